package replay

import (
	"os"
	"path/filepath"
	"testing"
)

func TestListOrdersByDeliveryTimeAndSkipsNonInputs(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{
		"AWSLogs/111111111111/CloudTrail/us-east-1/2026/11/02/111111111111_CloudTrail_us-east-1_20261102T1010Z_b.json.gz",
		"AWSLogs/222222222222/CloudTrail/eu-west-1/2026/11/02/222222222222_CloudTrail_eu-west-1_20261102T1005Z_a.json.gz",
		"events.jsonl", "truth.json", "README.md", ".hidden.json", ".git/x.json",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, filepath.Base(f.Rel))
	}
	want := []string{"events.jsonl", "222222222222_CloudTrail_eu-west-1_20261102T1005Z_a.json.gz", "111111111111_CloudTrail_us-east-1_20261102T1010Z_b.json.gz"}
	if len(got) != len(want) {
		t.Fatalf("List = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("List = %v, want %v", got, want)
		}
	}
	// The unit of a file depends on its place under the root and its size, not on the root.
	again, _ := List(dir)
	if again[1].Unit() != files[1].Unit() || files[1].Unit() == files[2].Unit() {
		t.Error("units must be stable per file and differ between files")
	}
	if _, err := List(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing path must be an error")
	}
}

func TestStatsAddAndClone(t *testing.T) {
	var s Stats
	s.Add(Stats{Files: 1, Events: 3, Matched: 2, Rejected: map[string]int64{"bad_units": 1}})
	s.Add(Stats{Files: 1, Events: 1, Rejected: map[string]int64{"bad_units": 2, "malformed_json": 1}})
	c := s.Clone()
	c.Rejected["bad_units"] = 99
	if s.Files != 2 || s.Events != 4 || s.Matched != 2 || s.Rejected["bad_units"] != 3 || s.Rejected["malformed_json"] != 1 {
		t.Fatalf("stats %+v", s)
	}
}
