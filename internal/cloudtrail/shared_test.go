package cloudtrail

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// findSharedData returns ../shared/data/cloudtrail next to the repository root (the directory that
// holds go.mod), or why it cannot.
func findSharedData() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
	data := filepath.Join(dir, "..", "shared", "data", "cloudtrail")
	if st, err := os.Stat(data); err != nil || !st.IsDir() {
		return "", fmt.Errorf("no directory %s", data)
	}
	return data, nil
}

// sharedDataDir returns the shared CloudTrail data directory or skips the test.
func sharedDataDir(tb testing.TB) string {
	tb.Helper()
	dir, err := findSharedData()
	if err != nil {
		tb.Skipf("shared CloudTrail data not found (%v); CI always has it: skipping", err)
	}
	return dir
}

// sharedFiles lists the data files under dir (SOURCES.md and other *.md files are documentation).
func sharedFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() && !strings.HasSuffix(path, ".md") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	sort.Strings(files)
	return files
}

// tally counts the outcome of decoding one or more inputs.
type tally struct {
	files, events int
	reasons       map[Reason]int
}

func (t *tally) add(o tally) {
	t.files += o.files
	t.events += o.events
	if t.reasons == nil {
		t.reasons = map[Reason]int{}
	}
	for r, n := range o.reasons {
		t.reasons[r] += n
	}
}

func (t tally) String() string {
	s := fmt.Sprintf("events=%d", t.events)
	for _, r := range Reasons {
		if n := t.reasons[r]; n > 0 {
			s += fmt.Sprintf(" %s=%d", r, n)
		}
	}
	return s
}

// TestSharedData decodes every file of the shared CloudTrail data and compares the counts with
// testdata/shared_summary.golden (go test ./internal/cloudtrail -update rewrites it).
func TestSharedData(t *testing.T) {
	dir := sharedDataDir(t)
	files := sharedFiles(t, dir)
	if len(files) == 0 {
		t.Fatalf("no files under %s", dir)
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "# Decode of every file under shared/data/cloudtrail (default Options).\n")
	fmt.Fprintf(&out, "# Regenerate: go test ./internal/cloudtrail -run TestSharedData -update\n")
	perDir := map[string]*tally{}
	var total tally
	for _, path := range files {
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		res := decodeAll(t, Decode, f, Options{})
		f.Close()
		if res.err != nil {
			t.Errorf("%s: Decode returned %v", rel, res.err)
		}
		one := tally{files: 1, events: len(res.events), reasons: map[Reason]int{}}
		for _, r := range res.rejections {
			one.reasons[r.Reason]++
		}
		if one.events+len(res.rejections) == 0 {
			t.Errorf("%s: no event and no rejection", rel)
		}
		fmt.Fprintf(&out, "%s\t%s\n", rel, one)
		top := strings.SplitN(rel, "/", 2)[0]
		if perDir[top] == nil {
			perDir[top] = &tally{}
		}
		perDir[top].add(one)
		total.add(one)
	}
	dirs := make([]string, 0, len(perDir))
	for d := range perDir {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	fmt.Fprintf(&out, "\n# Totals per directory\n")
	for _, d := range dirs {
		line := fmt.Sprintf("%s/\tfiles=%d %s", d, perDir[d].files, perDir[d])
		fmt.Fprintln(&out, line)
		t.Log(line)
	}
	line := fmt.Sprintf("TOTAL\tfiles=%d %s", total.files, total)
	fmt.Fprintln(&out, line)
	t.Log(line)
	compareGolden(t, "testdata/shared_summary.golden", out.Bytes())
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/cloudtrail -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("%s differs at line %d:\n got: %s\nwant: %s\n(run with -update if the change is intended)", path, i+1, g, w)
			}
		}
	}
}
