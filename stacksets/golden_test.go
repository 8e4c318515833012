package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spikewatch/spikewatch/internal/catalog"
)

// goldenFiles maps a template to its reviewed copy in testdata/.
var goldenFiles = map[string]string{
	"hub":       "testdata/hub.template.json",
	"member":    "testdata/member.template.json",
	"artifacts": "testdata/artifacts.template.json",
}

// Every change to the infrastructure shows up in review as a diff of these files.
func TestGoldenTemplates(t *testing.T) {
	for name, path := range goldenFiles {
		got, err := TemplateJSON(templates[name])
		if err != nil {
			t.Fatal(err)
		}
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s", path)
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (create it with: go test ./... -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s template differs from %s:\n%s\nIf the change is intended, refresh the golden files with: go test ./... -update",
				name, path, firstDiff(string(want), string(got)))
		}
	}
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "first difference at line " + itoa(i+1) + ":\n- " + wl + "\n+ " + gl
		}
	}
	return ""
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// `go run . synth` writes the same templates, in a fresh app: synthesis is deterministic, and the
// command writes every template where the Makefile and the docs say.
func TestSynthCommandWritesTheTemplates(t *testing.T) {
	dir := t.TempDir()
	if err := run([]string{"synth", "--outdir", dir}); err != nil {
		t.Fatal(err)
	}
	for name, file := range map[string]string{"hub": HubStackName, "member": MemberStackName, "artifacts": ArtifactsStackName} {
		b, err := os.ReadFile(filepath.Join(dir, file+".template.json"))
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if !equalJSON(got, templates[name]) {
			t.Errorf("%s.template.json from the command differs from the test's synthesis", file)
		}
	}
}

// --catalog PATH: the EventBridge pattern follows another catalog file.
func TestCatalogOption(t *testing.T) {
	extra := string(catalog.DefaultYAML()) + `
  - id: ec2:CreateSnapshot
    event_source: ec2.amazonaws.com
    event_name: CreateSnapshot
    management: true
    detector: {interval_minutes: 1, window_delay_minutes: 5, shingle_size: 8, feature: calls}
    alert: {min_grade: 0.7, min_confidence: 0.6, high_grade: 0.9}
    cost: {model: ebs_gib_month}
  - id: s3:CreateBucket
    event_source: s3.amazonaws.com
    event_name: CreateBucket
    management: true
    detector: {interval_minutes: 1, window_delay_minutes: 5, shingle_size: 8, feature: calls}
    alert: {min_grade: 0.7, min_confidence: 0.6, high_grade: 0.9}
    cost: {model: none}
`
	dir := t.TempDir()
	path := filepath.Join(dir, "catalog.yaml")
	if err := os.WriteFile(path, []byte(extra), 0o644); err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if err := run([]string{"synth", "--catalog", path, "--outdir", out}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, MemberStackName+".template.json"))
	if err != nil {
		t.Fatal(err)
	}
	var member map[string]any
	if err := json.Unmarshal(b, &member); err != nil {
		t.Fatal(err)
	}
	pattern := props(resources(member)["Rule"])["EventPattern"].(map[string]any)["detail"].(map[string]any)
	if !equalJSON(pattern["eventSource"], cat.EventSources()) || !equalJSON(pattern["eventName"], cat.EventNames()) {
		t.Errorf("pattern %v does not follow the catalog %v %v", pattern, cat.EventSources(), cat.EventNames())
	}
	if !strings.Contains(mustJSON(pattern), "s3.amazonaws.com") || !strings.Contains(mustJSON(pattern), "CreateSnapshot") {
		t.Errorf("pattern lacks the new APIs: %v", pattern)
	}
	// The hub embeds that member template.
	hb, err := os.ReadFile(filepath.Join(out, HubStackName+".template.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(hb), "CreateSnapshot") {
		t.Error("the hub's StackSet does not carry the new catalog's member template")
	}
}
