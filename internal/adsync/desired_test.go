package adsync

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/spikewatch/spikewatch/internal/catalog"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func testSettings() Settings {
	return Settings{
		WebhookURL:    "https://hub.spikewatch.internal:8443/api/v1/ad-alerts",
		WebhookSecret: "test-secret-0123456789",
	}.WithDefaults()
}

// fakeDetectorIDs stands for the ids the plugin would give the default catalog's detectors.
func fakeDetectorIDs(cat *catalog.Catalog) map[string]string {
	ids := map[string]string{}
	for _, a := range cat.APIs {
		ids[a.ID] = "id-" + DetectorName(testSettings(), a.ID)
	}
	return ids
}

// golden compares v's indented JSON with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, v any) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/adsync -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the desired documents (if the change is intended, refresh with go test ./internal/adsync -update):\n%s",
			path, firstDiff(string(want), string(got)))
	}
}

func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return "line " + strconv.Itoa(i+1) + ":\n  want " + w + "\n  got  " + g
		}
	}
	return ""
}

type goldenDoc struct {
	Name string         `json:"name"`
	API  string         `json:"api,omitempty"`
	Hash string         `json:"hash,omitempty"`
	Body map[string]any `json:"body"`
}

func TestGoldenDetectors(t *testing.T) {
	var docs []goldenDoc
	for _, d := range DesiredDetectors(catalog.Default(), testSettings()) {
		docs = append(docs, goldenDoc{d.Name, d.API, d.Hash, d.Body})
	}
	golden(t, "detectors.golden.json", docs)
}

func TestGoldenMonitors(t *testing.T) {
	cat := catalog.Default()
	var docs []goldenDoc
	for _, m := range DesiredMonitors(cat, testSettings(), fakeDetectorIDs(cat)) {
		docs = append(docs, goldenDoc{m.Name, m.API, m.Hash, m.Body})
	}
	golden(t, "monitors.golden.json", docs)
}

func TestGoldenChannel(t *testing.T) {
	c := DesiredChannel(testSettings())
	golden(t, "channel.golden.json", goldenDoc{Name: c.ID, Body: c.Body})
}

func TestDesiredDetectorsFollowCatalog(t *testing.T) {
	cat := catalog.Default()
	ds := DesiredDetectors(cat, testSettings())
	if len(ds) != len(cat.APIs) {
		t.Fatalf("%d detectors for %d APIs", len(ds), len(cat.APIs))
	}
	byAPI := map[string]Detector{}
	for _, d := range ds {
		byAPI[d.API] = d
		if !regexp.MustCompile(`^[a-z0-9._-]{1,64}$`).MatchString(d.Name) {
			t.Errorf("name %q is not a valid detector name", d.Name)
		}
		desc := d.Body["description"].(string)
		// The plugin stores descriptions HTML-encoded: nothing here may change under encoding.
		if strings.ContainsAny(desc, `&<>"'`) {
			t.Errorf("%s: description %q has characters the plugin HTML-encodes", d.Name, desc)
		}
		if specHash(desc) != d.Hash || len(desc) > 1000 {
			t.Errorf("%s: description %q does not carry hash %s (or is over 1000 characters)", d.Name, desc, d.Hash)
		}
		if ri := d.Body["result_index"].(string); !strings.HasPrefix(ri, ResultIndexPrefix) {
			t.Errorf("%s: result index %q", d.Name, ri)
		}
		if d.Body["imputation_option"].(map[string]any)["method"] != "ZERO" {
			t.Errorf("%s: imputation %v", d.Name, d.Body["imputation_option"])
		}
	}
	ec2 := byAPI["ec2:RunInstances"]
	if ec2.Name != "spikewatch-ec2-runinstances" {
		t.Errorf("name %q", ec2.Name)
	}
	if got := ec2.Body["category_field"]; !equalJSON(got, []string{"account_id"}) {
		t.Errorf("ec2 category fields %v", got)
	}
	if got := ec2.Body["feature_attributes"]; !strings.Contains(mustJSON(got), `"sum":{"field":"units"}`) {
		t.Errorf("ec2 feature %s, want the sum of units", mustJSON(got))
	}
	if got := ec2.Body["filter_query"]; mustJSON(got) != `{"bool":{"filter":[{"term":{"api":"ec2:RunInstances"}}]}}` {
		t.Errorf("ec2 filter %s", mustJSON(got))
	}
	lambda := byAPI["lambda:Invoke"]
	if got := lambda.Body["category_field"]; !equalJSON(got, []string{"account_id", "entity"}) {
		t.Errorf("lambda category fields %v", got)
	}
	if got := lambda.Body["feature_attributes"]; !strings.Contains(mustJSON(got), `"sum":{"field":"calls"}`) {
		t.Errorf("lambda feature %s, want the sum of calls", mustJSON(got))
	}
	if got := mustJSON(lambda.Body["detection_interval"]); got != `{"period":{"interval":1,"unit":"Minutes"}}` {
		t.Errorf("interval %s", got)
	}
	if got := mustJSON(lambda.Body["window_delay"]); got != `{"period":{"interval":5,"unit":"Minutes"}}` {
		t.Errorf("window delay %s", got)
	}
	if got := lambda.Body["indices"]; !equalJSON(got, []string{"spikewatch-counts-*"}) {
		t.Errorf("indices %v", got)
	}

	// A changed shingle changes that detector's hash only.
	cat2 := catalog.Default()
	cat2.APIs[0].Detector.ShingleSize = 4
	for i, d := range DesiredDetectors(cat2, testSettings()) {
		if changed := d.Hash != ds[i].Hash; changed != (i == 0) {
			t.Errorf("%s: hash changed=%v after changing the shingle of %s", d.Name, changed, cat2.APIs[0].ID)
		}
	}
}

func TestDesiredMonitors(t *testing.T) {
	cat := catalog.Default()
	ids := fakeDetectorIDs(cat)
	delete(ids, "ec2:CreateVolume") // its detector does not exist yet: no monitor
	ms := DesiredMonitors(cat, testSettings(), ids)
	if len(ms) != len(cat.APIs)-1 {
		t.Fatalf("%d monitors, want %d", len(ms), len(cat.APIs)-1)
	}
	for _, m := range ms {
		js := mustJSON(m.Body)
		for _, want := range []string{
			`"monitor_type":"bucket_level_monitor"`,
			`"must_not":[{"exists":{"field":"task_id"}}]`,
			`"term":{"detector_id":"` + ids[m.API] + `"}`,
			`"gte":"{{period_end}}||-3m"`,
			`"indices":["opensearch-ad-plugin-result-spikewatch*"]`,
			`"parent_bucket_path":"composite_agg"`,
			`"source":"params.max_grade \u003e= 0.7 \u0026\u0026 params.max_confidence \u003e= 0.9"`,
			`"actionable_alerts":["DEDUPED","NEW"]`,
			`"destination_id":"spikewatch-hub"`,
			`"spikewatch":{"api":"` + m.API + `"`,
		} {
			if !strings.Contains(js, want) {
				t.Errorf("%s: monitor lacks %s", m.Name, want)
			}
		}
		if meta := m.Body["ui_metadata"].(map[string]any)["spikewatch"].(map[string]any); meta["spec"] != m.Hash {
			t.Errorf("%s: ui_metadata %v, hash %s", m.Name, meta, m.Hash)
		}
	}
	lambda := ms[len(ms)-1]
	sources := mustJSON(lambda.Body["inputs"].([]any)[0].(map[string]any)["search"].(map[string]any)["query"].(map[string]any)["aggregations"])
	if !strings.Contains(sources, `{"account_id":{"terms"`) || !strings.Contains(sources, `{"entity":{"terms"`) {
		t.Errorf("lambda monitor does not bucket on account and entity: %s", sources)
	}
}

func TestMessageTemplateIsJSON(t *testing.T) {
	cat := catalog.Default()
	a, _ := cat.ByID("lambda:Invoke")
	tmpl := MessageTemplate(a, "spikewatch-lambda-invoke", "det-1")
	ctx := map[string]any{
		"monitor":       map[string]any{"_id": "mon-1", "name": `spikewatch-lambda-invoke`},
		"trigger":       map[string]any{"id": "trig", "name": "anomaly grade and confidence", "severity": "1"},
		"periodStart":   "2026-11-29T10:00:00Z",
		"periodEnd":     "2026-11-29T10:01:00Z",
		"newAlerts":     []any{map[string]any{"id": "a1", "state": "ACTIVE", "bucket_keys": "111111111111,fn-a", "start_time": 1764410460000}},
		"dedupedAlerts": []any{},
		"results": []any{map[string]any{"aggregations": map[string]any{"composite_agg": map[string]any{"buckets": []any{
			map[string]any{"key": map[string]any{"account_id": "111111111111", "entity": "fn-a"}, "doc_count": 2,
				"max_grade": map[string]any{"value": 0.91}, "max_confidence": map[string]any{"value": 0.8},
				"anomaly_start": map[string]any{"value": 1764410340000.0}, "anomaly_end": map[string]any{"value": 1764410400000.0}},
			map[string]any{"key": map[string]any{"account_id": "222222222222", "entity": "fn-b"}, "doc_count": 1,
				"max_grade": map[string]any{"value": 0.5}, "max_confidence": map[string]any{"value": 0.9}},
		}}}}},
		"error": nil,
	}
	out := renderMustache(t, tmpl, map[string]any{"ctx": ctx})
	m, err := ParseMessage([]byte(out))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if m.API != "lambda:Invoke" || m.Detector.ID != "det-1" || m.Monitor.ID != "mon-1" || m.Thresholds.MinGrade != 0.7 {
		t.Errorf("message %+v", m)
	}
	alerts, err := m.Alerts()
	if err != nil || len(alerts) != 1 {
		t.Fatalf("alerts %+v, %v", alerts, err)
	}
	got := alerts[0]
	if !got.Found || got.Category != "NEW" || got.AccountID != "111111111111" || got.Entity != "fn-a" || got.Grade != 0.91 || got.Confidence != 0.8 ||
		got.Start.UnixMilli() != 1764410340000 || got.End.UnixMilli() != 1764410400000 {
		t.Errorf("alert %+v", got)
	}
}

// renderMustache is a stand-in for OpenSearch's mustache with only what MessageTemplate uses:
// {{path}} (JSON-escaped, as OpenSearch escapes for JSON templates) and {{#toJson}}path{{/toJson}}.
// The real engine is exercised by TestMonitorQueryAndMessageOnOpenSearch.
func renderMustache(t *testing.T, tmpl string, params map[string]any) string {
	t.Helper()
	lookup := func(path string) any {
		var v any = params
		for _, p := range strings.Split(path, ".") {
			switch x := v.(type) {
			case map[string]any:
				v = x[p]
			case []any:
				i := 0
				if err := json.Unmarshal([]byte(p), &i); err != nil || i >= len(x) {
					return nil
				}
				v = x[i]
			default:
				return nil
			}
		}
		return v
	}
	toJSON := regexp.MustCompile(`\{\{#toJson\}\}([^{}]+)\{\{/toJson\}\}`)
	out := toJSON.ReplaceAllStringFunc(tmpl, func(s string) string {
		return mustJSON(lookup(toJSON.FindStringSubmatch(s)[1]))
	})
	vars := regexp.MustCompile(`\{\{([^{}#/^]+)\}\}`)
	return vars.ReplaceAllStringFunc(out, func(s string) string {
		v := lookup(vars.FindStringSubmatch(s)[1])
		if v == nil {
			return ""
		}
		q, _ := json.Marshal(strings.Trim(mustJSON(v), `"`))
		return strings.Trim(string(q), `"`)
	})
}

func TestSettingsValidate(t *testing.T) {
	if err := testSettings().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Settings){
		"result index prefix": func(s *Settings) { s.ResultIndex = "spikewatch-results" },
		"no secret":           func(s *Settings) { s.WebhookSecret = "" },
		"no url":              func(s *Settings) { s.WebhookURL = "" },
		"bad name prefix":     func(s *Settings) { s.NamePrefix = "Spike Watch" },
		"wildcard prefix":     func(s *Settings) { s.IndexPrefix = "spike*" },
	} {
		s := testSettings()
		mod(&s)
		if err := s.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if DetectorName(testSettings(), "lambda:Invoke") != "spikewatch-lambda-invoke" {
		t.Error(DetectorName(testSettings(), "lambda:Invoke"))
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func equalJSON(a, b any) bool { return mustJSON(a) == mustJSON(b) }
