package adsync_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spikewatch/spikewatch/internal/adsync"
	"github.com/spikewatch/spikewatch/internal/catalog"
	"github.com/spikewatch/spikewatch/internal/ostest"
)

// The monitor's search input and alert message against the real OpenSearch engine, without the
// Alerting plugin (not installed locally): the query is rendered as Alerting renders it (mustache,
// period_end in epoch ms) and run over an index with the AD result mapping (entity nested); the
// trigger script runs in a bucket_selector, as Alerting's bucket_selector_ext does per bucket; the
// message template is rendered by the same mustache engine Alerting uses, with a ctx shaped like
// Alerting's (BucketLevelTriggerExecutionContext.asTemplateArg), then parsed with ParseMessage.
func TestMonitorQueryAndMessageOnOpenSearch(t *testing.T) {
	e := ostest.New(t)
	ctx := ostest.Context(t, 2*time.Minute)
	var rb [3]byte
	_, _ = rand.Read(rb[:])
	// Named as the plugin names a custom result index's backing index (alias <ResultIndex>).
	resultIndex := adsync.ResultIndexPrefix + "t" + hex.EncodeToString(rb[:])
	idx := resultIndex + "-history-2026.11.29-1"
	t.Cleanup(func() { _ = e.Client.DeleteIndex(context.Background(), resultIndex+"*") })
	nested := map[string]any{"type": "nested", "properties": map[string]any{
		"name": map[string]any{"type": "keyword"}, "value": map[string]any{"type": "keyword"}}}
	date := map[string]any{"type": "date", "format": "strict_date_time||epoch_millis"}
	if err := e.Client.Do(ctx, http.MethodPut, "/"+idx, map[string]any{
		"settings": map[string]any{"number_of_shards": 1, "number_of_replicas": 0},
		"mappings": map[string]any{"dynamic": false, "properties": map[string]any{
			"detector_id": map[string]any{"type": "keyword"}, "task_id": map[string]any{"type": "keyword"},
			"anomaly_grade": map[string]any{"type": "double"}, "confidence": map[string]any{"type": "double"},
			"data_start_time": date, "data_end_time": date, "execution_end_time": date, "entity": nested,
		}},
	}, nil); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	ms := func(d time.Duration) int64 { return now.Add(d).UnixMilli() }
	type res struct {
		detector, account, fn, task string
		grade, conf                 float64
		exec                        time.Duration
	}
	docs := []res{
		{"det-1", "111111111111", "fn-a", "", 0.91, 0.95, -time.Minute},       // fires
		{"det-1", "111111111111", "fn-a", "", 0.3, 0.97, -2 * time.Minute},    // same bucket, lower grade
		{"det-1", "222222222222", "fn-b", "", 0.5, 0.9, -time.Minute},         // below min grade
		{"det-1", "333333333333", "fn-c", "task-9", 0.95, 0.95, -time.Minute}, // historical: ignored
		{"det-1", "444444444444", "fn-d", "", 0.99, 0.99, -10 * time.Minute},  // before the lookback
		{"det-1", "555555555555", "fn-e", "", 0, 0.99, -time.Minute},          // no anomaly
		{"det-2", "666666666666", "fn-f", "", 0.99, 0.99, -time.Minute},       // another detector
		{"det-1", "777777777777", "fn-g", "", 0.8, 0.4, -time.Minute},         // below min confidence
	}
	var bulk strings.Builder
	for _, d := range docs {
		doc := map[string]any{
			"detector_id": d.detector, "anomaly_grade": d.grade, "confidence": d.conf,
			"data_start_time": ms(d.exec - 6*time.Minute), "data_end_time": ms(d.exec - 5*time.Minute), "execution_end_time": ms(d.exec),
			// Multi-category entities as the plugin writes them (order is the plugin's, not ours).
			"entity": []any{map[string]any{"name": "entity", "value": d.fn}, map[string]any{"name": "account_id", "value": d.account}},
		}
		if d.task != "" {
			doc["task_id"] = d.task
		}
		b, _ := json.Marshal(doc)
		fmt.Fprintf(&bulk, "{\"index\":{}}\n%s\n", b)
	}
	var br struct {
		Errors bool `json:"errors"`
	}
	if err := e.Client.Do(ctx, http.MethodPost, "/"+idx+"/_bulk?refresh=true", strings.NewReader(bulk.String()), &br); err != nil || br.Errors {
		t.Fatalf("bulk: %v errors=%v", err, br.Errors)
	}

	api, _ := catalog.Default().ByID("lambda:Invoke")
	query := adsync.MonitorQuery(api, "det-1")
	qjson, _ := json.Marshal(query)
	var rendered struct {
		Out map[string]any `json:"template_output"`
	}
	if err := e.Client.Do(ctx, http.MethodPost, "/_render/template", map[string]any{
		"source": string(qjson), "params": map[string]any{"period_start": ms(-time.Minute), "period_end": now.UnixMilli()},
	}, &rendered); err != nil {
		t.Fatalf("render query: %v", err)
	}
	search := func(q map[string]any) map[string]any {
		t.Helper()
		var out map[string]any
		if err := e.Client.Do(ctx, http.MethodPost, "/"+idx+"/_search", q, &out); err != nil {
			t.Fatalf("search: %v", err)
		}
		return out
	}
	all := search(rendered.Out)
	keys := bucketKeys(t, all)
	if strings.Join(keys, " ") != "111111111111,fn-a 222222222222,fn-b 777777777777,fn-g" {
		t.Fatalf("buckets %v, want the three real-time anomalies of det-1 in the lookback", keys)
	}

	// The trigger condition per bucket.
	sel := cloneJSON(t, rendered.Out)
	comp := sel["aggregations"].(map[string]any)["composite_agg"].(map[string]any)
	comp["aggregations"].(map[string]any)["trigger"] = map[string]any{"bucket_selector": map[string]any{
		"buckets_path": map[string]any{"max_grade": "max_grade", "max_confidence": "max_confidence"},
		"script":       adsync.TriggerScript(api),
	}}
	if got := bucketKeys(t, search(sel)); strings.Join(got, " ") != "111111111111,fn-a" {
		t.Fatalf("trigger selects %v, want only 111111111111,fn-a", got)
	}

	// The hub's poll of the results finds what the monitor alerts on.
	r := adsync.NewReconciler(e.Client, catalog.Default(), adsync.Settings{ResultIndex: resultIndex}, nil)
	polled, err := r.Poll(ctx, map[string]string{"lambda:Invoke": "det-1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(polled) != 1 || polled[0].API != "lambda:Invoke" || polled[0].AccountID != "111111111111" || polled[0].Entity != "fn-a" || polled[0].Grade != 0.91 {
		t.Errorf("poll %+v, want lambda:Invoke 111111111111/fn-a grade 0.91", polled)
	}
	if polled, err := r.Poll(ctx, map[string]string{"lambda:Invoke": "det-1"}, now.Add(-time.Hour)); err != nil || len(polled) != 0 {
		t.Errorf("poll an hour earlier: %+v %v, want nothing", polled, err)
	}

	// The message, rendered by the real mustache engine.
	tctx := map[string]any{
		"monitor":         map[string]any{"_id": "mon-1", "_version": 1, "name": `spikewatch-"lambda"-invoke`, "enabled": true},
		"trigger":         map[string]any{"id": "trig-1", "name": "anomaly grade and confidence", "severity": "1", "parentBucketPath": "composite_agg"},
		"periodStart":     now.Add(-time.Minute).Format(time.RFC3339),
		"periodEnd":       now.Format(time.RFC3339),
		"newAlerts":       []any{map[string]any{"id": "alert-1", "state": "ACTIVE", "severity": "1", "bucket_keys": "111111111111,fn-a", "start_time": now.UnixMilli(), "end_time": nil}},
		"dedupedAlerts":   []any{},
		"completedAlerts": []any{},
		"results":         []any{all},
		"error":           nil,
	}
	var msg struct {
		Out json.RawMessage `json:"template_output"`
	}
	if err := e.Client.Do(ctx, http.MethodPost, "/_render/template", map[string]any{
		"source": adsync.MessageTemplate(api, "spikewatch-lambda-invoke", "det-1"), "params": map[string]any{"ctx": tctx},
	}, &msg); err != nil {
		t.Fatalf("render message (is it valid JSON?): %v", err)
	}
	t.Logf("rendered message: %s", msg.Out)
	m, err := adsync.ParseMessage(msg.Out)
	if err != nil {
		t.Fatalf("%v: %s", err, msg.Out)
	}
	if m.Monitor.Name != `spikewatch-"lambda"-invoke` || m.API != "lambda:Invoke" || m.Trigger.ID != "trig-1" {
		t.Errorf("message header %+v", m)
	}
	alerts, err := m.Alerts()
	if err != nil || len(alerts) != 1 {
		t.Fatalf("alerts %+v, %v\n%s", alerts, err, msg.Out)
	}
	a := alerts[0]
	if !a.Found || a.Category != "NEW" || a.AccountID != "111111111111" || a.Entity != "fn-a" || a.Grade != 0.91 || a.Confidence != 0.97 {
		t.Errorf("alert %+v, want 111111111111/fn-a NEW grade 0.91 confidence 0.97 (the max of the bucket)", a)
	}
	if want := now.Add(-8 * time.Minute); !a.Start.Equal(want) || !a.End.Equal(now.Add(-6*time.Minute)) {
		t.Errorf("anomaly window %s - %s, want %s - %s", a.Start, a.End, want, now.Add(-6*time.Minute))
	}

	// A run whose search failed has no aggregations: the message must still be JSON.
	tctx["results"] = []any{}
	tctx["error"] = "search failed"
	if err := e.Client.Do(ctx, http.MethodPost, "/_render/template", map[string]any{
		"source": adsync.MessageTemplate(api, "spikewatch-lambda-invoke", "det-1"), "params": map[string]any{"ctx": tctx},
	}, &msg); err != nil {
		t.Fatalf("render message without results: %v", err)
	}
	if m, err := adsync.ParseMessage(msg.Out); err != nil || m.Error != "search failed" {
		t.Fatalf("message without results: %v %+v", err, m)
	}
}

func bucketKeys(t *testing.T, resp map[string]any) []string {
	t.Helper()
	b, _ := json.Marshal(resp)
	var r struct {
		Aggregations struct {
			Composite struct {
				Buckets []struct {
					Key map[string]string `json:"key"`
				} `json:"buckets"`
			} `json:"composite_agg"`
		} `json:"aggregations"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, b := range r.Aggregations.Composite.Buckets {
		out = append(out, b.Key["account_id"]+","+b.Key["entity"])
	}
	return out
}

func cloneJSON(t *testing.T, v map[string]any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(v)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
