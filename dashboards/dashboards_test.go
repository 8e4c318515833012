package dashboards_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spikewatch/spikewatch/dashboards"
	"github.com/spikewatch/spikewatch/internal/alerts"
	"github.com/spikewatch/spikewatch/internal/search"
)

var update = flag.Bool("update", false, "rewrite testdata/spikewatch.golden.ndjson")

const (
	countsPattern = "spikewatch-counts"
	alertsPattern = "spikewatch-alerts"
)

func objects(t *testing.T) []dashboards.Object {
	t.Helper()
	objs, err := dashboards.Objects()
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) == 0 {
		t.Fatal("no saved objects")
	}
	return objs
}

func key(typ, id string) string { return typ + "/" + id }

func byKey(objs []dashboards.Object) map[string]dashboards.Object {
	m := map[string]dashboards.Object{}
	for _, o := range objs {
		m[key(o.Type, o.ID)] = o
	}
	return m
}

// attr returns a string attribute; nested names are dotted (kibanaSavedObjectMeta.searchSourceJSON).
func attr(o dashboards.Object, name string) (string, bool) {
	var v any = o.Attributes
	for _, part := range strings.Split(name, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		v = m[part]
	}
	s, ok := v.(string)
	return s, ok
}

// embedded decodes a JSON document held in a string attribute.
func embedded(t *testing.T, o dashboards.Object, name string, out any) {
	t.Helper()
	s, ok := attr(o, name)
	if !ok {
		t.Fatalf("%s %s: no string attribute %s", o.Type, o.ID, name)
	}
	if err := json.Unmarshal([]byte(s), out); err != nil {
		t.Fatalf("%s %s: %s is not JSON: %v", o.Type, o.ID, name, err)
	}
}

type visState struct {
	Title string `json:"title"`
	Type  string `json:"type"`
	Aggs  []struct {
		ID     string         `json:"id"`
		Type   string         `json:"type"`
		Schema string         `json:"schema"`
		Params map[string]any `json:"params"`
	} `json:"aggs"`
	Params struct {
		Controls []struct {
			FieldName           string `json:"fieldName"`
			IndexPatternRefName string `json:"indexPatternRefName"`
		} `json:"controls"`
		SeriesParams []struct {
			Data struct {
				ID string `json:"id"`
			} `json:"data"`
		} `json:"seriesParams"`
	} `json:"params"`
}

type searchSource struct {
	IndexRefName string `json:"indexRefName"`
	Query        struct {
		Query    string `json:"query"`
		Language string `json:"language"`
	} `json:"query"`
	Filter []any `json:"filter"`
}

type panel struct {
	PanelRefName string `json:"panelRefName"`
	PanelIndex   string `json:"panelIndex"`
	GridData     struct {
		X, Y, W, H int
		I          string
	} `json:"gridData"`
}

func TestObjectsValidJSON(t *testing.T) {
	lines := bytes.Split(bytes.TrimSpace(dashboards.NDJSON()), []byte("\n"))
	for i, line := range lines {
		var o struct {
			Type       string            `json:"type"`
			ID         string            `json:"id"`
			Attributes map[string]any    `json:"attributes"`
			References []json.RawMessage `json:"references"`
			Migration  map[string]string `json:"migrationVersion"`
		}
		if err := json.Unmarshal(line, &o); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if o.Type == "" || o.ID == "" || o.Attributes == nil || o.References == nil {
			t.Errorf("line %d: type, id, attributes and references are required: %s", i+1, line[:min(len(line), 120)])
		}
		if o.Migration[o.Type] == "" {
			t.Errorf("line %d: %s %s has no migrationVersion for its type", i+1, o.Type, o.ID)
		}
	}
	if n := len(objects(t)); n != len(lines) {
		t.Errorf("Objects returned %d objects for %d lines", n, len(lines))
	}
}

func TestObjectsUniqueIDs(t *testing.T) {
	seen := map[string]bool{}
	for _, o := range objects(t) {
		if seen[key(o.Type, o.ID)] {
			t.Errorf("duplicate %s", key(o.Type, o.ID))
		}
		seen[key(o.Type, o.ID)] = true
	}
}

// TestObjectsReferences checks both sides of each reference: it points at an object of the file,
// and the attributes use exactly the reference names the object declares.
func TestObjectsReferences(t *testing.T) {
	objs := objects(t)
	all := byKey(objs)
	for _, o := range objs {
		declared := map[string]bool{}
		for _, r := range o.References {
			if _, ok := all[key(r.Type, r.ID)]; !ok {
				t.Errorf("%s %s: reference %s points at %s, not in the file", o.Type, o.ID, r.Name, key(r.Type, r.ID))
			}
			if declared[r.Name] {
				t.Errorf("%s %s: reference name %s twice", o.Type, o.ID, r.Name)
			}
			declared[r.Name] = true
		}
		used := map[string]bool{}
		if _, ok := attr(o, "kibanaSavedObjectMeta.searchSourceJSON"); ok {
			var ss searchSource
			embedded(t, o, "kibanaSavedObjectMeta.searchSourceJSON", &ss)
			if ss.IndexRefName != "" {
				used[ss.IndexRefName] = true
			}
		}
		switch o.Type {
		case "visualization":
			var vs visState
			embedded(t, o, "visState", &vs)
			for _, c := range vs.Params.Controls {
				used[c.IndexPatternRefName] = true
			}
		case "dashboard":
			var panels []panel
			embedded(t, o, "panelsJSON", &panels)
			for _, p := range panels {
				used[p.PanelRefName] = true
			}
		}
		if !reflect.DeepEqual(used, declared) {
			t.Errorf("%s %s: attributes use references %v, object declares %v", o.Type, o.ID, keys(used), keys(declared))
		}
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestObjectsEmbeddedJSON(t *testing.T) {
	visTypes := map[string]bool{"line": true, "area": true, "histogram": true, "table": true, "metric": true, "pie": true, "input_control_vis": true}
	for _, o := range objects(t) {
		var v any
		switch o.Type {
		case "index-pattern":
			embedded(t, o, "fields", &v)
			if title, _ := attr(o, "title"); title == "" {
				t.Errorf("index-pattern %s: no title", o.ID)
			}
		case "visualization":
			var vs visState
			embedded(t, o, "visState", &vs)
			embedded(t, o, "uiStateJSON", &v)
			embedded(t, o, "kibanaSavedObjectMeta.searchSourceJSON", &v)
			if title, _ := attr(o, "title"); vs.Title != title {
				t.Errorf("visualization %s: visState title %q, title %q", o.ID, vs.Title, title)
			}
			if !visTypes[vs.Type] {
				t.Errorf("visualization %s: type %q needs more than OSD's classic visualizations", o.ID, vs.Type)
			}
			metrics := map[string]bool{}
			for _, a := range vs.Aggs {
				if a.Schema == "metric" {
					metrics[a.ID] = true
				}
			}
			for _, s := range vs.Params.SeriesParams {
				if !metrics[s.Data.ID] {
					t.Errorf("visualization %s: series for metric %q, which is not an agg", o.ID, s.Data.ID)
				}
			}
		case "dashboard":
			embedded(t, o, "panelsJSON", &v)
			embedded(t, o, "optionsJSON", &v)
			embedded(t, o, "kibanaSavedObjectMeta.searchSourceJSON", &v)
		default:
			t.Errorf("unexpected saved object type %q", o.Type)
		}
	}
}

// mappings returns the fields (name -> OpenSearch type) of the counts template and the alerts
// index, as the search and alerts packages install them: their requests go to a fake cluster.
func mappings(t *testing.T) map[string]map[string]string {
	t.Helper()
	var mu sync.Mutex
	bodies := map[string][]byte{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies[r.Method+" "+r.URL.Path] = b
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"acknowledged":true}`)
	}))
	defer srv.Close()
	sc, err := search.New(search.Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := sc.EnsureCountsTemplate(ctx, dashboards.DefaultPrefix); err != nil {
		t.Fatal(err)
	}
	if err := (&alerts.IndexStore{Search: sc, Index: dashboards.DefaultPrefix + "-alerts"}).Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	var tmpl struct {
		Template struct {
			Mappings json.RawMessage `json:"mappings"`
		} `json:"template"`
	}
	var index struct {
		Mappings json.RawMessage `json:"mappings"`
	}
	for req, out := range map[string]any{
		"PUT /_index_template/" + dashboards.DefaultPrefix + "-counts": &tmpl,
		"PUT /" + dashboards.DefaultPrefix + "-alerts":                 &index,
	} {
		if err := json.Unmarshal(bodies[req], out); err != nil {
			t.Fatalf("%s: %v (requests: %v)", req, err, bodies)
		}
	}
	return map[string]map[string]string{
		countsPattern: flatten(t, tmpl.Template.Mappings),
		alertsPattern: flatten(t, index.Mappings),
	}
}

func flatten(t *testing.T, mapping json.RawMessage) map[string]string {
	t.Helper()
	type prop struct {
		Type       string                     `json:"type"`
		Enabled    *bool                      `json:"enabled"`
		Properties map[string]json.RawMessage `json:"properties"`
	}
	out := map[string]string{}
	var walk func(prefix string, raw json.RawMessage)
	walk = func(prefix string, raw json.RawMessage) {
		var p prop
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatal(err)
		}
		if p.Enabled != nil && !*p.Enabled {
			return
		}
		for name, sub := range p.Properties {
			walk(prefix+name+".", sub)
		}
		if len(p.Properties) == 0 && p.Type != "" {
			out[strings.TrimSuffix(prefix, ".")] = p.Type
		}
	}
	walk("", mapping)
	if len(out) == 0 {
		t.Fatalf("no fields in mapping %s", mapping)
	}
	return out
}

// kqlFields are the field names a KQL query tests (field:value), quoted values left out.
func kqlFields(q string) []string {
	q = regexp.MustCompile(`"(\\.|[^"\\])*"`).ReplaceAllString(q, `""`)
	var out []string
	for _, m := range regexp.MustCompile(`([A-Za-z_@][\w.@]*)\s*:`).FindAllStringSubmatch(q, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestObjectsFieldsInMapping(t *testing.T) {
	maps := mappings(t)
	objs := objects(t)
	all := byKey(objs)

	// The index patterns match the index names and carry exactly the mapped fields.
	titles := map[string]string{countsPattern: dashboards.DefaultPrefix + "-counts-*", alertsPattern: dashboards.DefaultPrefix + "-alerts"}
	for id, title := range titles {
		o, ok := all[key("index-pattern", id)]
		if !ok {
			t.Fatalf("no index pattern %s", id)
		}
		if got, _ := attr(o, "title"); got != title {
			t.Errorf("index pattern %s: title %q, want %q", id, got, title)
		}
		var fields []struct {
			Name         string   `json:"name"`
			ESTypes      []string `json:"esTypes"`
			Aggregatable bool     `json:"aggregatable"`
			Scripted     bool     `json:"scripted"`
		}
		embedded(t, o, "fields", &fields)
		got := map[string]string{}
		for _, f := range fields {
			if strings.HasPrefix(f.Name, "_") {
				continue // meta fields
			}
			if len(f.ESTypes) == 1 && f.Aggregatable && !f.Scripted {
				got[f.Name] = f.ESTypes[0]
			}
		}
		if !reflect.DeepEqual(got, maps[id]) {
			t.Errorf("index pattern %s: fields %v, mapping %v", id, got, maps[id])
		}
	}
	if ok, _ := path.Match(titles[countsPattern], search.CountsIndex(dashboards.DefaultPrefix, time.Now())); !ok {
		t.Errorf("counts index %s does not match the pattern %s", search.CountsIndex(dashboards.DefaultPrefix, time.Now()), titles[countsPattern])
	}
	if tf, _ := attr(all[key("index-pattern", countsPattern)], "timeFieldName"); maps[countsPattern][tf] != "date" {
		t.Errorf("counts time field %q is not a date", tf)
	}
	if tf, _ := attr(all[key("index-pattern", alertsPattern)], "timeFieldName"); tf != "start" || maps[alertsPattern][tf] != "date" {
		t.Errorf("alerts time field %q, want the date start", tf)
	}

	// Every field a visualization aggregates on, filters on or offers as a control exists in the
	// mapping of its index pattern, with a type the aggregation accepts.
	accepts := map[string][]string{
		"sum": {"long", "float"}, "max": {"long", "float", "date"}, "min": {"long", "float", "date"},
		"cardinality": {"keyword", "long", "float", "date"}, "terms": {"keyword"}, "date_histogram": {"date"}, "control": {"keyword"},
		"query": {"keyword", "long", "float", "date"},
	}
	check := func(o dashboards.Object, pattern, use, field string) {
		typ, ok := maps[pattern][field]
		switch {
		case !ok:
			t.Errorf("visualization %s: %s on %q, not a field of %s", o.ID, use, field, pattern)
		case !contains(accepts[use], typ):
			t.Errorf("visualization %s: %s on %q, a %s", o.ID, use, field, typ)
		}
	}
	for _, o := range objs {
		if o.Type != "visualization" {
			continue
		}
		refs := map[string]string{}
		for _, r := range o.References {
			refs[r.Name] = r.ID
		}
		var vs visState
		embedded(t, o, "visState", &vs)
		var ss searchSource
		embedded(t, o, "kibanaSavedObjectMeta.searchSourceJSON", &ss)
		for _, c := range vs.Params.Controls {
			check(o, refs[c.IndexPatternRefName], "control", c.FieldName)
		}
		if len(vs.Aggs) == 0 {
			continue
		}
		pattern := refs[ss.IndexRefName]
		if pattern == "" {
			t.Errorf("visualization %s aggregates without an index pattern", o.ID)
			continue
		}
		for _, a := range vs.Aggs {
			if f, ok := a.Params["field"].(string); ok {
				check(o, pattern, a.Type, f)
			} else if a.Type != "count" {
				t.Errorf("visualization %s: %s aggregation without a field", o.ID, a.Type)
			}
		}
		for _, f := range kqlFields(ss.Query.Query) {
			check(o, pattern, "query", f)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestDashboards(t *testing.T) {
	all := byKey(objects(t))
	tests := []struct {
		id, title string
		controls  bool
	}{
		{"spikewatch-org", "Spikewatch — Organization", false},
		{"spikewatch-account", "Spikewatch — Account", true},
	}
	var bodies [][]string
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			d, ok := all[key("dashboard", tt.id)]
			if !ok {
				t.Fatalf("no dashboard %s", tt.id)
			}
			if title, _ := attr(d, "title"); title != tt.title {
				t.Errorf("title %q, want %q", title, tt.title)
			}
			var panels []panel
			embedded(t, d, "panelsJSON", &panels)
			if len(panels) != len(d.References) {
				t.Errorf("%d panels, %d references", len(panels), len(d.References))
			}
			var vis []string
			hasControls := false
			for _, r := range d.References {
				v, ok := all[key(r.Type, r.ID)]
				if r.Type != "visualization" || !ok {
					t.Errorf("panel %s is %s, not a visualization of the file", r.Name, key(r.Type, r.ID))
					continue
				}
				var vs visState
				embedded(t, v, "visState", &vs)
				if vs.Type == "input_control_vis" {
					hasControls = true
					fields := []string{}
					for _, c := range vs.Params.Controls {
						fields = append(fields, c.FieldName)
					}
					if want := []string{"account_id", "api", "region"}; !reflect.DeepEqual(fields, want) {
						t.Errorf("controls on %v, want %v", fields, want)
					}
				} else {
					vis = append(vis, r.ID)
				}
			}
			if hasControls != tt.controls {
				t.Errorf("controls panel: %v, want %v", hasControls, tt.controls)
			}
			// Panels fit the 48-column grid and do not overlap.
			for i, p := range panels {
				g := p.GridData
				if g.X < 0 || g.W <= 0 || g.H <= 0 || g.X+g.W > 48 || g.I != p.PanelIndex {
					t.Errorf("panel %s: bad grid %+v", p.PanelIndex, g)
				}
				for _, q := range panels[:i] {
					h := q.GridData
					if g.X < h.X+h.W && h.X < g.X+g.W && g.Y < h.Y+h.H && h.Y < g.Y+g.H {
						t.Errorf("panels %s and %s overlap", p.PanelIndex, q.PanelIndex)
					}
				}
			}
			sort.Strings(vis)
			bodies = append(bodies, vis)
		})
	}
	// The Account dashboard is the Organization's visualizations, filtered by the controls.
	if len(bodies) == 2 && !reflect.DeepEqual(bodies[0], bodies[1]) {
		t.Errorf("the dashboards show different visualizations:\n org     %v\n account %v", bodies[0], bodies[1])
	}
}

// normalized is the saved objects sorted by type and id, one per line, with the JSON documents
// held in strings (visState, panelsJSON, fields...) decoded so that a diff reads.
func normalized(t *testing.T, ndjson []byte) []byte {
	t.Helper()
	var objs []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(ndjson), []byte("\n")) {
		var o map[string]any
		if err := json.Unmarshal(line, &o); err != nil {
			t.Fatal(err)
		}
		decodeStrings(o["attributes"])
		objs = append(objs, o)
	}
	sort.Slice(objs, func(i, j int) bool {
		return fmt.Sprint(objs[i]["type"], "/", objs[i]["id"]) < fmt.Sprint(objs[j]["type"], "/", objs[j]["id"])
	})
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	for _, o := range objs {
		if err := enc.Encode(o); err != nil {
			t.Fatal(err)
		}
	}
	return out.Bytes()
}

func decodeStrings(v any) {
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	for k, val := range m {
		switch val := val.(type) {
		case string:
			if k == "visState" || k == "fields" || strings.HasSuffix(k, "JSON") {
				var doc any
				if json.Unmarshal([]byte(val), &doc) == nil {
					m[k] = doc
				}
			}
		case map[string]any:
			decodeStrings(val)
		}
	}
}

func TestGolden(t *testing.T) {
	got := normalized(t, dashboards.NDJSON())
	file := filepath.Join("testdata", "spikewatch.golden.ndjson")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -run Golden -update)", err)
	}
	if !bytes.Equal(got, want) {
		g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := range max(len(g), len(w)) {
			if i >= len(g) || i >= len(w) || g[i] != w[i] {
				t.Fatalf("saved objects differ from %s at object %d (run go test -run Golden -update if intended)\ngot:  %s\nwant: %s",
					file, i+1, at(g, i), at(w, i))
			}
		}
	}
}

func at(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "(none)"
}

func TestForPrefix(t *testing.T) {
	orig := objects(t)
	tests := []struct {
		prefix, counts, alerts string
	}{
		{"", "spikewatch-counts-*", "spikewatch-alerts"},
		{"spikewatch", "spikewatch-counts-*", "spikewatch-alerts"},
		{"acme", "acme-counts-*", "acme-alerts"},
		{"prod-usage", "prod-usage-counts-*", "prod-usage-alerts"},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			out := dashboards.ForPrefix(tt.prefix)
			origLines := bytes.Split(bytes.TrimSpace(dashboards.NDJSON()), []byte("\n"))
			lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
			if len(lines) != len(origLines) {
				t.Fatalf("%d lines, want %d", len(lines), len(origLines))
			}
			for i, line := range lines {
				var o dashboards.Object
				if err := json.Unmarshal(line, &o); err != nil {
					t.Fatalf("line %d: %v", i+1, err)
				}
				want := orig[i]
				if o.Type != "index-pattern" {
					if !bytes.Equal(line, origLines[i]) {
						t.Errorf("%s %s changed", o.Type, o.ID)
					}
					continue
				}
				wantTitle := map[string]string{countsPattern: tt.counts, alertsPattern: tt.alerts}[o.ID]
				if got, _ := attr(o, "title"); got != wantTitle {
					t.Errorf("index pattern %s: title %q, want %q", o.ID, got, wantTitle)
				}
				// Nothing but the title changes.
				o.Attributes["title"] = want.Attributes["title"]
				if !reflect.DeepEqual(o, want) {
					t.Errorf("index pattern %s: more than the title changed", o.ID)
				}
			}
		})
	}
}

func TestImport(t *testing.T) {
	tests := []struct {
		name      string
		base      string // path of Dashboards under the server
		user      string
		overwrite bool
		status    int
		answer    string
		wantErr   string
		wantCount int
	}{
		{name: "success", user: "admin", overwrite: true, status: 200, answer: `{"success":true,"successCount":19}`, wantCount: 19},
		{name: "under a base path, no auth, no overwrite", base: "/_dashboards", overwrite: false, status: 200,
			answer: `{"success":true,"successCount":19}`, wantCount: 19},
		{name: "objects refused", user: "admin", overwrite: true, status: 200,
			answer: `{"success":false,"successCount":17,"errors":[` +
				`{"id":"spikewatch-org","type":"dashboard","title":"Spikewatch — Organization","error":{"type":"conflict"}},` +
				`{"id":"spikewatch-totals","type":"visualization","title":"Totals","error":{"type":"missing_references","references":[{"type":"index-pattern","id":"spikewatch-counts"}]}}]}`,
			wantErr: "17 imported, 2 failed: dashboard spikewatch-org (Spikewatch — Organization): conflict; " +
				"visualization spikewatch-totals (Totals): missing_references [missing index-pattern spikewatch-counts]"},
		{name: "forbidden", user: "reader", overwrite: true, status: 403,
			answer: `{"statusCode":403,"error":"Forbidden","message":"no permissions"}`, wantErr: "403 Forbidden"},
		{name: "not json", user: "admin", overwrite: true, status: 200, answer: `<html>login</html>`, wantErr: "not the import result"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var problems []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				problems = checkImportRequest(r, tt.base, tt.user, tt.overwrite, dashboards.NDJSON())
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.answer)
			}))
			defer srv.Close()
			res, err := dashboards.Import(context.Background(), srv.URL+tt.base+"/", srv.Client(), tt.user, "secret", tt.overwrite)
			for _, p := range problems {
				t.Error(p)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !res.Success || res.SuccessCount != tt.wantCount {
				t.Errorf("result %+v", res)
			}
		})
	}
	if _, err := dashboards.Import(context.Background(), "localhost:5601", nil, "", "", true); err == nil {
		t.Error("a URL without scheme was accepted")
	}
}

// checkImportRequest returns what is wrong with a saved objects import request.
func checkImportRequest(r *http.Request, base, user string, overwrite bool, want []byte) []string {
	var p []string
	if r.Method != http.MethodPost {
		p = append(p, "method "+r.Method)
	}
	if r.URL.Path != base+"/api/saved_objects/_import" {
		p = append(p, "path "+r.URL.Path)
	}
	if got := r.URL.Query().Get("overwrite"); (got == "true") != overwrite {
		p = append(p, "overwrite="+got)
	}
	if r.Header.Get("osd-xsrf") != "true" {
		p = append(p, "no osd-xsrf header")
	}
	u, pw, ok := r.BasicAuth()
	if user == "" && ok || user != "" && (u != user || pw != "secret") {
		p = append(p, fmt.Sprintf("basic auth %q %q %v", u, pw, ok))
	}
	f, fh, err := r.FormFile("file")
	if err != nil {
		return append(p, "no multipart file: "+err.Error())
	}
	defer f.Close()
	got, _ := io.ReadAll(f)
	if fh.Filename != "spikewatch.ndjson" {
		p = append(p, "filename "+fh.Filename)
	}
	if !bytes.Equal(got, want) {
		p = append(p, fmt.Sprintf("file content: %d bytes, want the %d bytes of the saved objects", len(got), len(want)))
	}
	return p
}
