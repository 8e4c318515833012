package detect

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// goldenSeries is a fixed synthetic series: 3 days of 5-minute call counts (Poisson around a
// daily profile, mean 40), a 1-hour gap on day 2 (imputed as zeros), a repeated point, and a
// 45-minute 6x spike on day 3 at 10:00.
func goldenSeries() []Point {
	r := rand.New(rand.NewPCG(2024, 3))
	start := time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC)
	var pts []Point
	for i := range 3 * 288 {
		t := start.Add(time.Duration(i) * 5 * time.Minute)
		if i >= 288+100 && i < 288+112 { // gap
			continue
		}
		lam := 40 * diurnal(t)
		if i >= 2*288+120 && i < 2*288+129 {
			lam *= 6
		}
		pts = append(pts, Point{t, poisson(r, lam)})
		if i == 500 { // a corrected value for the same interval
			pts = append(pts, Point{t.Add(time.Minute), pts[len(pts)-1].Value + 1})
		}
	}
	return pts
}

// TestGoldenRun compares Run on goldenSeries with testdata/run.golden (values rounded to 3
// decimals); go test -run TestGoldenRun -update rewrites it.
func TestGoldenRun(t *testing.T) {
	var out bytes.Buffer
	fmt.Fprintf(&out, "# Run(Config{Interval: 5m}, goldenSeries()): time actual expected score grade confidence window\n")
	for _, r := range Run(Config{Interval: 5 * time.Minute}, goldenSeries()) {
		fmt.Fprintf(&out, "%s %g %.3f %.3f %.3f %.3f %d\n", r.Time.Format("2006-01-02T15:04"), r.Actual,
			r.Expected, r.Score, r.Grade, r.Confidence, r.Window)
	}
	path := filepath.Join("testdata", "run.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		got, exp := bytes.Split(out.Bytes(), []byte("\n")), bytes.Split(want, []byte("\n"))
		for i := range min(len(got), len(exp)) {
			if !bytes.Equal(got[i], exp[i]) {
				t.Fatalf("line %d differs:\n got  %s\n want %s\n(go test -run TestGoldenRun -update to accept)", i+1, got[i], exp[i])
			}
		}
		t.Fatalf("%d lines, want %d (go test -run TestGoldenRun -update to accept)", len(got), len(exp))
	}
}
