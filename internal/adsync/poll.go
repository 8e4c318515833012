package adsync

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spikewatch/spikewatch/internal/catalog"
)

// ResultsQuery is an API's monitor query (MonitorQuery) with the period end filled in, as Alerting
// fills it in at each run, so the hub can run it itself.
func ResultsQuery(a *catalog.API, detectorID string, end time.Time) map[string]any {
	b, err := json.Marshal(MonitorQuery(a, detectorID))
	if err == nil {
		b = []byte(strings.ReplaceAll(string(b), "{{period_end}}", strconv.FormatInt(end.UnixMilli(), 10)))
		var q map[string]any
		if err = json.Unmarshal(b, &q); err == nil {
			return q
		}
	}
	// The query is built here from strings, numbers and maps; this cannot fail.
	panic(fmt.Sprintf("adsync: results query: %v", err))
}

// Poll runs every API's monitor query against the result index for the lookback ending at end,
// and returns the buckets that meet the API's alert thresholds: what the monitors would alert on.
// It lets the hub find anomalies whose webhook was lost. detectorIDs maps catalog API ids to
// detector ids (Report.DetectorIDs).
func (r *Reconciler) Poll(ctx context.Context, detectorIDs map[string]string, end time.Time) ([]Anomaly, error) {
	var out []Anomaly
	for i := range r.cat.APIs {
		a := &r.cat.APIs[i]
		id := detectorIDs[a.ID]
		if id == "" {
			continue
		}
		q := ResultsQuery(a, id, end)
		comp := q["aggregations"].(map[string]any)[compositeAgg].(map[string]any)["composite"].(map[string]any)
		for {
			var resp struct {
				Aggregations struct {
					Composite struct {
						Buckets  []MessageBucket `json:"buckets"`
						AfterKey map[string]any  `json:"after_key"`
					} `json:"composite_agg"`
				} `json:"aggregations"`
			}
			path := "/" + r.s.ResultIndex + "*/_search?ignore_unavailable=true&allow_no_indices=true"
			if err := r.c.Do(ctx, http.MethodPost, path, q, &resp); err != nil {
				return out, fmt.Errorf("adsync: poll %s results: %w", a.ID, err)
			}
			for _, b := range resp.Aggregations.Composite.Buckets {
				if b.MaxGrade.float() >= a.Alert.MinGrade && b.MaxConfidence.float() >= a.Alert.MinConfidence {
					out = append(out, b.anomaly(a.ID))
				}
			}
			if len(resp.Aggregations.Composite.Buckets) < CompositeSize || resp.Aggregations.Composite.AfterKey == nil {
				break
			}
			comp["after"] = resp.Aggregations.Composite.AfterKey
		}
	}
	return out, nil
}
