package ostest_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spikewatch/spikewatch/internal/ostest"
)

// The local node must carry job scheduler and the scripting modules that AD and Alerting extend.
func TestLocalOpenSearchPluginsAndModules(t *testing.T) {
	e := ostest.New(t)
	ctx := ostest.Context(t, time.Minute)
	ps, err := e.Client.Plugins(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plugins: %v", ps)
	if !contains(ps, "opensearch-job-scheduler") {
		t.Errorf("job scheduler missing from _cat/plugins: %v", ps)
	}
	var nodes struct {
		Nodes map[string]struct {
			Version string `json:"version"`
			Modules []struct {
				Name string `json:"name"`
			} `json:"modules"`
		} `json:"nodes"`
	}
	if err := e.Client.Do(ctx, http.MethodGet, "/_nodes/plugins", nil, &nodes); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Nodes {
		var mods []string
		for _, m := range n.Modules {
			mods = append(mods, m.Name)
		}
		for _, want := range []string{"lang-painless", "lang-mustache", "reindex", "transport-netty4"} {
			if !contains(mods, want) {
				t.Errorf("module %s not loaded (modules: %v)", want, mods)
			}
		}
		if !strings.HasPrefix(n.Version, "2.19.") {
			t.Errorf("version %s, want 2.19.x", n.Version)
		}
	}
	var painless struct {
		Result string `json:"result"`
	}
	if err := e.Client.Do(ctx, http.MethodPost, "/_scripts/painless/_execute", map[string]any{"script": map[string]any{"source": "params.a * 21", "params": map[string]any{"a": 2}}}, &painless); err != nil {
		t.Fatalf("painless: %v", err)
	}
	if painless.Result != "42" {
		t.Errorf("painless result %q, want 42", painless.Result)
	}
	var tmpl struct {
		Out map[string]any `json:"template_output"`
	}
	if err := e.Client.Do(ctx, http.MethodPost, "/_render/template", map[string]any{"source": `{"q":"{{x}}"}`, "params": map[string]any{"x": "spike"}}, &tmpl); err != nil {
		t.Fatalf("mustache: %v", err)
	}
	if tmpl.Out["q"] != "spike" {
		t.Errorf("mustache output %v", tmpl.Out)
	}
}

// Anomaly detection for real: two accounts of Poisson counts, a 10x spike of 20 minutes in one.
// Runs when the AD plugin is installed (see docs/opensearch-local.md).
func TestAnomalyDetectionHighCardinality(t *testing.T) {
	e := ostest.New(t)
	e.RequirePlugin(t, "opensearch-anomaly-detection")
	ctx := ostest.Context(t, 10*time.Minute)
	idx := e.Prefix + "-counts"
	if err := e.Client.Do(ctx, http.MethodPut, "/"+idx, map[string]any{
		"settings": map[string]any{"number_of_shards": 1, "number_of_replicas": 0},
		"mappings": map[string]any{"properties": map[string]any{
			"@timestamp": map[string]any{"type": "date"}, "account_id": map[string]any{"type": "keyword"}, "calls": map[string]any{"type": "long"},
		}},
	}, nil); err != nil {
		t.Fatal(err)
	}
	const n = 1500
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	spikeFrom, spikeTo := start.Add(1200*time.Minute), start.Add(1220*time.Minute)
	rng := rand.New(rand.NewPCG(1, 2))
	var bulk strings.Builder
	for i := 0; i < n; i++ {
		ts := start.Add(time.Duration(i) * time.Minute)
		for _, acct := range []string{"111111111111", "222222222222"} {
			lambda := 20.0
			if acct == "111111111111" && !ts.Before(spikeFrom) && ts.Before(spikeTo) {
				lambda = 200
			}
			fmt.Fprintf(&bulk, "{\"index\":{}}\n{\"@timestamp\":%q,\"account_id\":%q,\"calls\":%d}\n", ts.Format(time.RFC3339), acct, poisson(rng, lambda))
		}
	}
	var br struct {
		Errors bool `json:"errors"`
	}
	if err := e.Client.Do(ctx, http.MethodPost, "/"+idx+"/_bulk?refresh=true", strings.NewReader(bulk.String()), &br); err != nil || br.Errors {
		t.Fatalf("bulk: %v errors=%v", err, br.Errors)
	}
	var created struct {
		ID string `json:"_id"`
	}
	if err := e.Client.Do(ctx, http.MethodPost, "/_plugins/_anomaly_detection/detectors", map[string]any{
		"name": e.Prefix + "-hcad", "time_field": "@timestamp", "indices": []string{idx},
		"category_field":     []string{"account_id"},
		"feature_attributes": []any{map[string]any{"feature_name": "calls", "feature_enabled": true, "aggregation_query": map[string]any{"calls": map[string]any{"sum": map[string]any{"field": "calls"}}}}},
		"detection_interval": map[string]any{"period": map[string]any{"interval": 1, "unit": "Minutes"}},
		"window_delay":       map[string]any{"period": map[string]any{"interval": 1, "unit": "Minutes"}},
		"shingle_size":       8,
	}, &created); err != nil {
		t.Fatalf("create detector: %v", err)
	}
	t.Cleanup(func() {
		_ = e.Client.Do(context.Background(), http.MethodPost, "/_plugins/_anomaly_detection/detectors/"+created.ID+"/_stop?historical=true", nil, nil)
		_ = e.Client.Do(context.Background(), http.MethodDelete, "/_plugins/_anomaly_detection/detectors/"+created.ID, nil, nil)
	})
	end := start.Add(n * time.Minute)
	if err := e.Client.Do(ctx, http.MethodPost, "/_plugins/_anomaly_detection/detectors/"+created.ID+"/_start",
		map[string]any{"start_time": start.UnixMilli(), "end_time": end.UnixMilli()}, nil); err != nil {
		t.Fatalf("start historical analysis: %v", err)
	}
	for {
		var d struct {
			Task struct {
				State string `json:"state"`
				Error string `json:"error"`
			} `json:"historical_analysis_task"`
		}
		if err := e.Client.Do(ctx, http.MethodGet, "/_plugins/_anomaly_detection/detectors/"+created.ID+"?task=true", nil, &d); err != nil {
			t.Fatal(err)
		}
		if d.Task.State == "FINISHED" {
			break
		}
		if d.Task.State == "FAILED" || d.Task.State == "STOPPED" {
			t.Fatalf("historical analysis %s: %s", d.Task.State, d.Task.Error)
		}
		select {
		case <-ctx.Done():
			t.Fatal("historical analysis did not finish")
		case <-time.After(2 * time.Second):
		}
	}
	var res struct {
		Hits struct {
			Hits []struct {
				Source struct {
					Grade     float64 `json:"anomaly_grade"`
					DataStart int64   `json:"data_start_time"`
					Entity    []struct {
						Value string `json:"value"`
					} `json:"entity"`
				} `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := e.Client.Do(ctx, http.MethodPost, "/_plugins/_anomaly_detection/detectors/results/_search", map[string]any{
		"size": 10000, "query": map[string]any{"bool": map[string]any{"filter": []any{
			map[string]any{"term": map[string]any{"detector_id": created.ID}},
			map[string]any{"range": map[string]any{"anomaly_grade": map[string]any{"gt": 0}}},
		}}},
	}, &res); err != nil {
		t.Fatal(err)
	}
	var spikeHit bool
	for _, h := range res.Hits.Hits {
		if len(h.Source.Entity) == 0 {
			continue
		}
		ts := time.UnixMilli(h.Source.DataStart)
		switch h.Source.Entity[0].Value {
		case "111111111111":
			if !ts.Before(spikeFrom) && ts.Before(spikeTo.Add(10*time.Minute)) {
				spikeHit = true
			}
		case "222222222222":
			if h.Source.Grade > 0.5 {
				t.Errorf("quiet account has an anomaly of grade %.2f at %s", h.Source.Grade, ts)
			}
		}
	}
	if !spikeHit {
		t.Errorf("no anomaly overlapping the spike %s-%s (anomalies: %d)", spikeFrom, spikeTo, len(res.Hits.Hits))
	}
}

// Alerting and notifications for real: a webhook channel to a server in the test, a monitor that
// fires, _execute, and the server receives the message.
func TestAlertingWebhook(t *testing.T) {
	e := ostest.New(t)
	e.RequirePlugin(t, "opensearch-alerting")
	e.RequirePlugin(t, "opensearch-notifications")
	ctx := ostest.Context(t, 2*time.Minute)
	got := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
	}))
	defer srv.Close()
	cfgID := e.Prefix + "-hook"
	if err := e.Client.Do(ctx, http.MethodPost, "/_plugins/_notifications/configs", map[string]any{
		"config_id": cfgID,
		"config":    map[string]any{"name": cfgID, "config_type": "webhook", "is_enabled": true, "webhook": map[string]any{"url": srv.URL + "/hook"}},
	}, nil); err != nil {
		t.Fatalf("create channel: %v", err)
	}
	t.Cleanup(func() {
		_ = e.Client.Do(context.Background(), http.MethodDelete, "/_plugins/_notifications/configs/"+cfgID, nil, nil)
	})
	var mon struct {
		ID string `json:"_id"`
	}
	if err := e.Client.Do(ctx, http.MethodPost, "/_plugins/_alerting/monitors", map[string]any{
		"type": "monitor", "monitor_type": "query_level_monitor", "name": e.Prefix + "-mon", "enabled": true,
		"schedule": map[string]any{"period": map[string]any{"interval": 1, "unit": "MINUTES"}},
		"inputs":   []any{map[string]any{"search": map[string]any{"indices": []string{".kibana*", "*"}, "query": map[string]any{"size": 0, "query": map[string]any{"match_all": map[string]any{}}}}}},
		"triggers": []any{map[string]any{"query_level_trigger": map[string]any{
			"name": "always", "severity": "1", "condition": map[string]any{"script": map[string]any{"source": "return true", "lang": "painless"}},
			"actions": []any{map[string]any{"name": "hook", "destination_id": cfgID, "message_template": map[string]any{"source": "spikewatch {{ctx.monitor.name}}"}, "throttle_enabled": false}},
		}}},
	}, &mon); err != nil {
		t.Fatalf("create monitor: %v", err)
	}
	t.Cleanup(func() {
		_ = e.Client.Do(context.Background(), http.MethodDelete, "/_plugins/_alerting/monitors/"+mon.ID, nil, nil)
	})
	if err := e.Client.Do(ctx, http.MethodPost, "/_plugins/_alerting/monitors/"+mon.ID+"/_execute?dryrun=false", nil, nil); err != nil {
		t.Fatalf("execute: %v", err)
	}
	select {
	case body := <-got:
		if !strings.Contains(body, "spikewatch "+e.Prefix) {
			t.Errorf("webhook body %q lacks the monitor name", body)
		}
	case <-ctx.Done():
		t.Fatal("webhook never received the monitor's message")
	}
}

func poisson(r *rand.Rand, lambda float64) int {
	if lambda > 50 {
		v := int(math.Round(lambda + math.Sqrt(lambda)*r.NormFloat64()))
		return max(v, 0)
	}
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
