package adsync

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/spikewatch/spikewatch/internal/catalog"
)

// Detector is the desired state of one AD detector.
type Detector struct {
	Name string
	API  string // catalog id, e.g. ec2:RunInstances
	// Body is the exact JSON of POST _plugins/_anomaly_detection/detectors and of PUT .../{id}.
	Body map[string]any
	// Hash identifies the definition (the body without its description); the description carries
	// it as "spikewatch-spec:<hash>" so a later reconcile can tell whether the detector changed
	// without comparing the plugin's normalized copy of the body.
	Hash string
}

// specMarker precedes the hash in descriptions. The AD plugin stores descriptions HTML-encoded
// (Encode.forHtml), so descriptions here avoid & < > " ' and round-trip unchanged.
const specMarker = "spikewatch-spec:"

var specPattern = regexp.MustCompile(specMarker + `([0-9a-f]{16})`)

// specHash extracts the hash from a description ("" when there is none).
func specHash(description string) string {
	m := specPattern.FindStringSubmatch(description)
	if m == nil {
		return ""
	}
	return m[1]
}

// hashOf is the first 16 hex digits of the SHA-256 of v's JSON. encoding/json sorts map keys, so
// equal maps hash equally.
func hashOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Bodies are built here from strings, numbers, maps and slices; this cannot fail.
		panic(fmt.Sprintf("adsync: hash: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// CategoryFields are the detector's category fields for an API: the account, plus the entity
// (e.g. the Lambda function name) when the catalog gives one.
func CategoryFields(a *catalog.API) []string {
	if a.Entity != nil {
		return []string{"account_id", "entity"}
	}
	return []string{"account_id"}
}

func minutes(n int) map[string]any {
	return map[string]any{"period": map[string]any{"interval": n, "unit": "Minutes"}}
}

// DesiredDetectors returns one high-cardinality detector per catalog API, in catalog order.
func DesiredDetectors(cat *catalog.Catalog, s Settings) []Detector {
	s = s.WithDefaults()
	out := make([]Detector, 0, len(cat.APIs))
	for i := range cat.APIs {
		a := &cat.APIs[i]
		name := DetectorName(s, a.ID)
		feature := a.Detector.Feature // "calls" or "units", both long fields of the counts
		body := map[string]any{
			"name":       name,
			"time_field": "@timestamp",
			"indices":    []string{s.IndexPrefix + "-counts-*"},
			"filter_query": map[string]any{"bool": map[string]any{"filter": []any{
				map[string]any{"term": map[string]any{"api": a.ID}},
			}}},
			"feature_attributes": []any{map[string]any{
				"feature_name":      feature,
				"feature_enabled":   true,
				"aggregation_query": map[string]any{"sum_" + feature: map[string]any{"sum": map[string]any{"field": feature}}},
			}},
			"detection_interval": minutes(a.Detector.IntervalMinutes),
			"window_delay":       minutes(a.Detector.WindowDelayMinutes),
			"shingle_size":       a.Detector.ShingleSize,
			"category_field":     CategoryFields(a),
			"imputation_option":  map[string]any{"method": "ZERO"},
			"result_index":       s.ResultIndex,
		}
		h := hashOf(body)
		per := "account"
		if a.Entity != nil {
			per = "account and " + a.Entity.Name
		}
		body["description"] = fmt.Sprintf("Spikewatch: sum of %s of %s per %s. Managed by spikewatch from its catalog; edits are overwritten. %s%s",
			feature, a.ID, per, specMarker, h)
		out = append(out, Detector{Name: name, API: a.ID, Body: body, Hash: h})
	}
	return out
}
