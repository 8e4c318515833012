package adsync_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/spikewatch/spikewatch/internal/adsync"
	"github.com/spikewatch/spikewatch/internal/catalog"
	"github.com/spikewatch/spikewatch/internal/search"
)

// fakeCluster is a unit-level fake of the three plugins' REST APIs, written from their source
// (AD 2.19: RestIndexAnomalyDetectorAction and its handlers, IndexJobActionHandler; Alerting 2.19:
// RestSearchMonitorAction; Notifications 2.19: NotificationConfigRestHandler). It serves plausible
// responses and enforces the rules the reconciler must respect: unique detector names, the
// high-cardinality detector limit, no create over empty indices, no update or delete of a running
// detector, no change of category fields, 404 before the plugins' indices exist, "already
// running" answered with status 200. It records every request. It is no substitute for the real
// plugins: TestReconcileAgainstPlugins runs the same flow where they are installed.
type fakeCluster struct {
	mu        sync.Mutex
	plugins   []string
	counts    int
	defaultHC string
	settings  map[string]any
	detectors map[string]*fakeDetector
	monitors  map[string]map[string]any
	channels  map[string]map[string]any
	everDet   bool
	everMon   bool
	next      int
	requests  []string // "METHOD /path"
}

type fakeDetector struct {
	body    map[string]any
	running bool
	started bool
}

func newFakeCluster() *fakeCluster {
	return &fakeCluster{
		plugins:   append([]string{"opensearch-job-scheduler"}, adsync.Plugins...),
		counts:    100,
		defaultHC: "10",
		settings:  map[string]any{},
		detectors: map[string]*fakeDetector{},
		monitors:  map[string]map[string]any{},
		channels:  map[string]map[string]any{},
	}
}

func (f *fakeCluster) addDetector(id string, body map[string]any, running bool) {
	f.detectors[id] = &fakeDetector{body: body, running: running, started: running}
	f.everDet = true
}

// mutations are the requests that change something.
func (f *fakeCluster) mutations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.requests {
		if strings.HasPrefix(r, "GET ") || strings.HasSuffix(r, "/_search") || strings.HasSuffix(r, "/_count") {
			continue
		}
		out = append(out, r)
	}
	return out
}

func (f *fakeCluster) reset() {
	f.mu.Lock()
	f.requests = nil
	f.mu.Unlock()
}

func (f *fakeCluster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	var body map[string]any
	if b, _ := io.ReadAll(r.Body); len(b) > 0 {
		if err := json.Unmarshal(b, &body); err != nil {
			reply(w, 400, errBody("parse_exception", err.Error()))
			return
		}
	}
	p := r.URL.Path
	const det, mon, cfg = "/_plugins/_anomaly_detection/detectors", "/_plugins/_alerting/monitors", "/_plugins/_notifications/configs"
	switch {
	case p == "/_cat/plugins":
		var rows []map[string]any
		for _, c := range f.plugins {
			rows = append(rows, map[string]any{"name": "node-1", "component": c, "version": "2.19.5.0"})
		}
		reply(w, 200, rows)
	case p == "/_cluster/settings" && r.Method == http.MethodGet:
		reply(w, 200, map[string]any{"persistent": f.settings, "transient": map[string]any{},
			"defaults": map[string]any{adsync.SettingMaxHC: f.defaultHC}})
	case p == "/_cluster/settings" && r.Method == http.MethodPut:
		for k, v := range body["persistent"].(map[string]any) {
			f.settings[k] = fmt.Sprint(v)
		}
		reply(w, 200, map[string]any{"acknowledged": true})
	case strings.HasSuffix(p, "-counts-*/_count"):
		reply(w, 200, map[string]any{"count": f.counts})

	case p == cfg && r.Method == http.MethodPost:
		id := body["config_id"].(string)
		if f.channels[id] != nil {
			reply(w, 409, errBody("version_conflict_engine_exception", "exists"))
			return
		}
		f.channels[id] = body["config"].(map[string]any)
		reply(w, 200, map[string]any{"config_id": id})
	case strings.HasPrefix(p, cfg+"/"):
		id := strings.TrimPrefix(p, cfg+"/")
		c := f.channels[id]
		if c == nil {
			reply(w, 404, errBody("status_exception", "NotificationConfig "+id+" not found"))
			return
		}
		if r.Method == http.MethodPut {
			f.channels[id] = body["config"].(map[string]any)
			reply(w, 200, map[string]any{"config_id": id})
			return
		}
		reply(w, 200, map[string]any{"start_index": 0, "total_hits": 1, "total_hit_relation": "eq", "config_list": []any{
			map[string]any{"config_id": id, "last_updated_time_ms": 1, "created_time_ms": 1, "config": c}}})

	case p == det+"/_search":
		if !f.everDet {
			reply(w, 404, errBody("index_not_found_exception", "no such index [.opendistro-anomaly-detectors]"))
			return
		}
		var hits []any
		total := 0
		if fmt.Sprint(body["size"]) == "0" { // the high-cardinality count
			for _, d := range f.detectors {
				if len(anySlice(d.body["category_field"])) > 0 {
					total++
				}
			}
		} else {
			prefix := body["query"].(map[string]any)["prefix"].(map[string]any)["name.keyword"].(string)
			for id, d := range f.detectors {
				if strings.HasPrefix(d.body["name"].(string), prefix) {
					hits = append(hits, map[string]any{"_index": ".opendistro-anomaly-detectors", "_id": id, "_source": d.body})
					total++
				}
			}
		}
		reply(w, 200, map[string]any{"hits": map[string]any{"total": map[string]any{"value": total, "relation": "eq"}, "hits": hits}})
	case p == det && r.Method == http.MethodPost:
		f.createDetector(w, body)
	case strings.HasPrefix(p, det+"/"):
		rest := strings.Split(strings.TrimPrefix(p, det+"/"), "/")
		d := f.detectors[rest[0]]
		if d == nil {
			reply(w, 404, errBody("status_exception", "Can't find config with id: "+rest[0]))
			return
		}
		f.detectorCall(w, r.Method, rest, d, body)

	case p == mon+"/_search":
		if !f.everMon {
			reply(w, 404, errBody("index_not_found_exception", "Configured indices are not found: [.opendistro-alerting-config]"))
			return
		}
		filters := body["query"].(map[string]any)["bool"].(map[string]any)["filter"].([]any)
		prefix := filters[1].(map[string]any)["prefix"].(map[string]any)["monitor.name.keyword"].(string)
		var hits []any
		for id, m := range f.monitors {
			if strings.HasPrefix(m["name"].(string), prefix) {
				// As RestSearchMonitorAction answers: the parsed monitor, re-serialized, with the
				// fields the plugin adds.
				src := map[string]any{"schema_version": 5, "enabled_time": 1, "last_update_time": 1, "data_sources": map[string]any{}, "owner": "alerting"}
				for k, v := range m {
					src[k] = v
				}
				hits = append(hits, map[string]any{"_id": id, "_source": src})
			}
		}
		reply(w, 200, map[string]any{"hits": map[string]any{"hits": hits}})
	case p == mon && r.Method == http.MethodPost:
		if f.channels[destination(body)] == nil {
			reply(w, 400, errBody("illegal_argument_exception", "no such channel"))
			return
		}
		f.next++
		id := fmt.Sprintf("mon%d", f.next)
		f.monitors[id], f.everMon = body, true
		reply(w, 201, map[string]any{"_id": id, "_version": 1, "monitor": body})
	case strings.HasPrefix(p, mon+"/"):
		id := strings.TrimPrefix(p, mon+"/")
		if f.monitors[id] == nil {
			reply(w, 404, errBody("status_exception", "Monitor not found."))
			return
		}
		if r.Method == http.MethodDelete {
			delete(f.monitors, id)
		} else {
			f.monitors[id] = body
		}
		reply(w, 200, map[string]any{"_id": id})
	default:
		reply(w, 400, errBody("unexpected", r.Method+" "+p))
	}
}

func (f *fakeCluster) createDetector(w http.ResponseWriter, body map[string]any) {
	name := body["name"].(string)
	hc := 0
	for _, d := range f.detectors {
		if d.body["name"] == name {
			reply(w, 409, errBody("status_exception", "Cannot create anomaly detector with name ["+name+"] as it's already used by another detector"))
			return
		}
		if len(anySlice(d.body["category_field"])) > 0 {
			hc++
		}
	}
	limit, _ := strconv.Atoi(f.defaultHC)
	if v, ok := f.settings[adsync.SettingMaxHC]; ok {
		limit, _ = strconv.Atoi(fmt.Sprint(v))
	}
	if len(anySlice(body["category_field"])) > 0 && hc >= limit {
		reply(w, 400, errBody("illegal_argument_exception", fmt.Sprintf("Can't create more than %d HC anomaly detectors", limit)))
		return
	}
	if f.counts == 0 {
		reply(w, 400, errBody("illegal_argument_exception", "Can't create anomaly detector as no document is found in the indices"))
		return
	}
	f.next++
	id := fmt.Sprintf("det%d", f.next)
	f.addDetector(id, normalized(body), false)
	reply(w, 201, map[string]any{"_id": id, "_version": 1, "anomaly_detector": f.detectors[id].body})
}

func (f *fakeCluster) detectorCall(w http.ResponseWriter, method string, rest []string, d *fakeDetector, body map[string]any) {
	id := rest[0]
	switch {
	case method == http.MethodGet:
		var job any
		if d.started {
			job = map[string]any{"name": id, "enabled": d.running}
		}
		reply(w, 200, map[string]any{"_id": id, "anomaly_detector": d.body, "anomaly_detector_job": job})
	case method == http.MethodPut:
		if d.running {
			reply(w, 400, errBody("status_exception", "Job is running: "+id))
			return
		}
		if fmt.Sprint(d.body["category_field"]) != fmt.Sprint(body["category_field"]) {
			reply(w, 400, errBody("status_exception", "Can't change category field"))
			return
		}
		d.body = normalized(body)
		reply(w, 200, map[string]any{"_id": id, "anomaly_detector": d.body})
	case method == http.MethodDelete:
		if d.running {
			reply(w, 400, errBody("status_exception", "Job is running: "+id))
			return
		}
		delete(f.detectors, id)
		reply(w, 200, map[string]any{"_id": id, "result": "deleted"})
	case len(rest) == 2 && rest[1] == "_start":
		if d.running {
			// IndexJobActionHandler: OpenSearchStatusException(..., RestStatus.OK).
			reply(w, 200, map[string]any{"error": map[string]any{"type": "status_exception",
				"reason": "Anomaly detector job is already running: " + id}, "status": 200})
			return
		}
		d.running, d.started = true, true
		reply(w, 200, map[string]any{"_id": id, "_version": 1})
	case len(rest) == 2 && rest[1] == "_stop":
		d.running = false
		reply(w, 200, map[string]any{"_id": id})
	default:
		reply(w, 400, errBody("unexpected", method+" "+strings.Join(rest, "/")))
	}
}

// normalized mimics the plugin's stored copy: it is not byte-equal to what was sent.
func normalized(body map[string]any) map[string]any {
	out := map[string]any{"schema_version": 0, "last_update_time": 1764410400000, "recency_emphasis": 2560, "history": 40}
	for k, v := range body {
		out[k] = v
	}
	if fq, ok := out["filter_query"].(map[string]any); ok {
		if b, ok := fq["bool"].(map[string]any); ok {
			b["adjust_pure_negative"], b["boost"] = true, 1.0
		}
	}
	return out
}

func destination(monitor map[string]any) string {
	t := monitor["triggers"].([]any)[0].(map[string]any)["bucket_level_trigger"].(map[string]any)
	return t["actions"].([]any)[0].(map[string]any)["destination_id"].(string)
}

func anySlice(v any) []any { s, _ := v.([]any); return s }

func errBody(typ, reason string) map[string]any {
	return map[string]any{"error": map[string]any{"type": typ, "reason": reason}}
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fakeSettings() adsync.Settings {
	return adsync.Settings{WebhookURL: "https://hub.example:8443/api/v1/ad-alerts", WebhookSecret: "s3cret"}
}

func startFake(t *testing.T, h http.Handler) *search.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := search.New(search.Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestReconcileOrderAndIdempotency(t *testing.T) {
	f := newFakeCluster()
	f.defaultHC = "4" // too low for 2 foreign + 3 Spikewatch HC detectors
	foreignCPU := map[string]any{"name": "cpu-per-host", "description": "the platform team's", "category_field": []any{"host"}}
	foreignHand := map[string]any{"name": "spikewatch-by-hand", "description": "made in Dashboards", "category_field": []any{"account_id"}}
	f.addDetector("foreign1", foreignCPU, true)
	f.addDetector("foreign2", foreignHand, true)
	c := startFake(t, f)
	ctx := context.Background()

	r := adsync.NewReconciler(c, catalog.Default(), fakeSettings(), nil)
	if ok, err := r.Available(ctx); !ok || err != nil {
		t.Fatalf("available %v %v", ok, err)
	}
	f.reset()
	rep, err := r.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f.requests[0] != "GET /_cat/plugins" {
		t.Errorf("first request %s, want the plugin check", f.requests[0])
	}
	want := []string{
		"PUT /_cluster/settings",
		"POST /_plugins/_notifications/configs",
		"POST /_plugins/_anomaly_detection/detectors",
		"POST /_plugins/_anomaly_detection/detectors",
		"POST /_plugins/_anomaly_detection/detectors",
		"POST /_plugins/_anomaly_detection/detectors/det1/_start",
		"POST /_plugins/_anomaly_detection/detectors/det2/_start",
		"POST /_plugins/_anomaly_detection/detectors/det3/_start",
		"POST /_plugins/_alerting/monitors",
		"POST /_plugins/_alerting/monitors",
		"POST /_plugins/_alerting/monitors",
	}
	if got := f.mutations(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rep.Changes != len(want) || rep.HCNeeded != 5 || rep.HCLimit != 5 || len(rep.Pending) != 0 {
		t.Errorf("report: changes %d (want %d), hc %d/%d (want 5/5), pending %v", rep.Changes, len(want), rep.HCNeeded, rep.HCLimit, rep.Pending)
	}
	if f.settings[adsync.SettingMaxHC] != "5" {
		t.Errorf("setting %v", f.settings)
	}
	// Monitors point at the detectors created in the same run, and go through the channel.
	for _, m := range f.monitors {
		api := m["ui_metadata"].(map[string]any)["spikewatch"].(map[string]any)["api"].(string)
		if id := rep.DetectorIDs[api]; id == "" || !strings.Contains(mustJSON(m), `"detector_id":"`+id+`"`) {
			t.Errorf("monitor %s does not use detector %q", m["name"], id)
		}
	}
	hook := f.channels["spikewatch-hub"]["webhook"].(map[string]any)
	if hook["url"] != fakeSettings().WebhookURL || hook["header_params"].(map[string]any)[adsync.SecretHeader] != "s3cret" {
		t.Errorf("channel %v", hook)
	}

	// Second run: nothing changes.
	f.reset()
	rep, err = r.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Changes != 0 || len(f.mutations()) != 0 {
		t.Errorf("second reconcile: %d changes, calls %v", rep.Changes, f.mutations())
	}

	// The catalog changes the shingle of ec2:RunInstances: only that detector follows.
	cat := catalog.Default()
	cat.APIs[0].Detector.ShingleSize = 4
	f.reset()
	rep, err = adsync.NewReconciler(c, cat, fakeSettings(), nil).Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{
		"POST /_plugins/_anomaly_detection/detectors/det1/_stop",
		"PUT /_plugins/_anomaly_detection/detectors/det1",
		"POST /_plugins/_anomaly_detection/detectors/det1/_start",
	}
	if got := f.mutations(); strings.Join(got, "\n") != strings.Join(want, "\n") || rep.Changes != 3 {
		t.Errorf("after the shingle change: %d changes, calls:\n%s\nwant:\n%s", rep.Changes, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s := f.detectors["det1"].body["shingle_size"]; fmt.Sprint(s) != "4" || !f.detectors["det1"].running {
		t.Errorf("det1 shingle %v running %v", s, f.detectors["det1"].running)
	}

	// lambda:Invoke leaves the catalog: its detector and monitor go; foreign detectors stay.
	cat.APIs = cat.APIs[:2]
	f.reset()
	if _, err = adsync.NewReconciler(c, cat, fakeSettings(), nil).Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(f.mutations(), "\n")
	if !strings.Contains(got, "POST /_plugins/_anomaly_detection/detectors/det3/_stop\nDELETE /_plugins/_anomaly_detection/detectors/det3") ||
		!strings.Contains(got, "DELETE /_plugins/_alerting/monitors/") || strings.Count(got, "\n") != 2 {
		t.Errorf("after removing lambda:Invoke, calls:\n%s", got)
	}
	if f.detectors["foreign1"] == nil || f.detectors["foreign2"] == nil || !f.detectors["foreign1"].running || mustJSON(f.detectors["foreign2"].body) != mustJSON(foreignHand) {
		t.Error("a foreign detector was touched")
	}
	for _, req := range f.requests {
		if strings.Contains(req, "foreign") {
			t.Errorf("request %s touches a foreign detector", req)
		}
	}
}

func TestReconcileWaitsForCounts(t *testing.T) {
	f := newFakeCluster()
	f.counts = 0
	c := startFake(t, f)
	r := adsync.NewReconciler(c, catalog.Default(), fakeSettings(), nil)
	rep, err := r.Reconcile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Pending) != 3 || len(f.detectors) != 0 || len(f.monitors) != 0 || rep.Changes != 1 {
		t.Fatalf("without counts: pending %v, %d detectors, %d monitors, %d changes (want the channel only)", rep.Pending, len(f.detectors), len(f.monitors), rep.Changes)
	}
	f.counts = 10
	if rep, err = r.Reconcile(context.Background()); err != nil || len(rep.Pending) != 0 || len(f.detectors) != 3 || len(f.monitors) != 3 {
		t.Fatalf("with counts: %v, pending %v, %d detectors, %d monitors", err, rep.Pending, len(f.detectors), len(f.monitors))
	}
}

func TestReconcileNameConflict(t *testing.T) {
	f := newFakeCluster()
	f.addDetector("theirs", map[string]any{"name": "spikewatch-lambda-invoke", "description": "not ours"}, true)
	c := startFake(t, f)
	rep, err := adsync.NewReconciler(c, catalog.Default(), fakeSettings(), nil).Reconcile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Pending) != 1 || !strings.Contains(rep.Pending[0], "spikewatch-lambda-invoke") || len(f.monitors) != 2 || len(f.detectors) != 3 {
		t.Errorf("pending %v, %d monitors, %d detectors", rep.Pending, len(f.monitors), len(f.detectors))
	}
	if mustJSON(f.detectors["theirs"].body) != `{"description":"not ours","name":"spikewatch-lambda-invoke"}` {
		t.Error("the foreign detector was changed")
	}
}

func TestReconcileWithoutPlugins(t *testing.T) {
	f := newFakeCluster()
	f.plugins = f.plugins[:3] // notifications missing
	r := adsync.NewReconciler(startFake(t, f), catalog.Default(), fakeSettings(), nil)
	if _, err := r.Reconcile(context.Background()); !errors.Is(err, adsync.ErrPluginsMissing) || !strings.Contains(err.Error(), "opensearch-notifications") {
		t.Fatalf("err %v, want ErrPluginsMissing naming the notifications plugin", err)
	}
	if ok, err := r.Available(context.Background()); ok || err != nil {
		t.Fatalf("available %v %v", ok, err)
	}
	if m := f.mutations(); len(m) != 0 {
		t.Errorf("changes without the plugins: %v", m)
	}
}

func TestReconcileGoesOnPastFailures(t *testing.T) {
	f := newFakeCluster()
	// The channel cannot be created: the monitors, which need it, fail; the detectors are still
	// created and started; the error says what failed.
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/_plugins/_notifications/configs" {
			reply(w, 403, errBody("security_exception", "no permissions for [cluster:admin/opensearch/notifications/configs/create]"))
			return
		}
		f.ServeHTTP(w, r)
	})
	rep, err := adsync.NewReconciler(startFake(t, h), catalog.Default(), fakeSettings(), nil).Reconcile(context.Background())
	if err == nil || !strings.Contains(err.Error(), "create channel spikewatch-hub") || !strings.Contains(err.Error(), "create monitor") {
		t.Fatalf("err %v, want the channel and monitor failures", err)
	}
	if len(f.detectors) != 3 || rep.Changes != 6 {
		t.Errorf("%d detectors, %d changes: the detectors should be created and started despite the channel", len(f.detectors), rep.Changes)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
