package detect

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC)

func minute(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }

// exactLogPoissonTail sums the Poisson pmf above s-1 (integer s), for checking.
func exactLogPoissonTail(s int, lam float64) float64 {
	p := math.Exp(-lam)
	cdf := 0.0
	for k := 0; k < s; k++ {
		cdf += p
		p *= lam / float64(k+1)
	}
	return math.Log(1 - cdf)
}

func TestLogPoissonTail(t *testing.T) {
	for _, tc := range []struct {
		s   int
		lam float64
		tol float64 // absolute tolerance on the natural log
	}{
		{1, 0.01, 1e-9}, {2, 0.08, 1e-9}, {5, 1, 1e-9}, {13, 2, 1e-9}, {30, 10, 1e-8},
		{60, 40, 1e-6}, {99, 80, 1e-6},
	} {
		got, want := logPoissonTail(float64(tc.s), tc.lam), exactLogPoissonTail(tc.s, tc.lam)
		if math.Abs(got-want) > tc.tol {
			t.Errorf("logPoissonTail(%d, %g) = %g, want %g", tc.s, tc.lam, got, want)
		}
	}
	// Above the series range, Wilson–Hilferty: within a few percent in log space, monotone,
	// finite far in the tail.
	for _, tc := range []struct{ s, lam float64 }{{150, 100}, {300, 200}, {2000, 1000}, {1e6, 9.9e5}} {
		got := logPoissonTail(tc.s, tc.lam)
		z := (tc.s - tc.lam) / math.Sqrt(tc.lam)
		normal := logNormalTail(z)
		if !(got < 0) || math.Abs(got-normal) > 0.35*math.Abs(normal)+1 {
			t.Errorf("logPoissonTail(%g, %g) = %g, normal approximation %g", tc.s, tc.lam, got, normal)
		}
	}
	if v := logPoissonTail(1e15, 1); math.IsNaN(v) || math.IsInf(v, 0) {
		t.Errorf("extreme tail not finite: %g", v)
	}
	if v := logPoissonTail(0, 3); v != 0 {
		t.Errorf("logPoissonTail(0, 3) = %g, want 0", v)
	}
}

func TestLogNormalTail(t *testing.T) {
	for _, z := range []float64{-3, 0, 1, 2.5, 5, 10, 29.9} {
		want := math.Log(0.5 * math.Erfc(z/math.Sqrt2))
		if got := logNormalTail(z); math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("logNormalTail(%g) = %g, want %g", z, got, want)
		}
	}
	// Continuous across the switch to the asymptotic expansion, and finite beyond erfc's range.
	if a, b := logNormalTail(29.999999), logNormalTail(30); math.Abs(a-b) > 1e-3 {
		t.Errorf("discontinuity at 30: %g vs %g", a, b)
	}
	if v := logNormalTail(1e6); math.IsInf(v, 0) || math.IsNaN(v) || v > -1e11 {
		t.Errorf("logNormalTail(1e6) = %g", v)
	}
}

func TestParamsDefaults(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cfg        Config
		windows    []int
		minHistory int
		buckets    int
	}{
		{"default", Config{}, []int{1, 2, 4, 8}, 40, 24},
		{"weekly", Config{Season: 7 * 24 * time.Hour}, []int{1, 2, 4, 8}, 40, 168},
		{"shingle-1", Config{ShingleSize: 1}, []int{1}, 33, 24},
		{"shingle-10", Config{ShingleSize: 10, MinHistory: 5}, []int{1, 2, 4, 8, 10}, 5, 24},
		{"shingle-cap", Config{ShingleSize: 1000}, []int{1, 2, 4, 8, 16, 32, 64, 128}, 160, 24},
		{"no-season", Config{Season: -1}, []int{1, 2, 4, 8}, 40, 1},
		{"buckets-capped-per-interval", Config{Interval: 5 * time.Minute, SeasonBuckets: 10000}, []int{1, 2, 4, 8}, 40, 288},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newParams(tc.cfg)
			if fmt.Sprint(p.windows) != fmt.Sprint(tc.windows) || p.minHistory != tc.minHistory || p.buckets != tc.buckets {
				t.Errorf("windows %v minHistory %d buckets %d; want %v %d %d",
					p.windows, p.minHistory, p.buckets, tc.windows, tc.minHistory, tc.buckets)
			}
			if len(p.windows) > maxWindows {
				t.Errorf("%d windows > %d", len(p.windows), maxWindows)
			}
		})
	}
	if p := newParams(Config{MinExcess: -1, MinRatio: -1}); p.minExcess != 0 || p.minRatio != 0 {
		t.Errorf("negative gates should disable them: %g %g", p.minExcess, p.minRatio)
	}
}

// steady feeds n minutes of Poisson(rate) counts and returns the model.
func steady(t *testing.T, cfg Config, rate float64, n int) *Model {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	m := NewModel(cfg)
	for i := range n {
		m.Update(minute(i), poisson(r, rate))
	}
	return m
}

// TestExplainableSpike: a steady 12/min entity that suddenly makes 480 calls in a minute gets an
// alert at once, with numbers fit for the alert text.
func TestExplainableSpike(t *testing.T) {
	m := steady(t, Config{}, 12, 600)
	r := m.Update(minute(600), 480)
	if r.Grade < 0.7 || r.Confidence < 0.7 {
		t.Fatalf("grade %.2f confidence %.2f, want both >= 0.7", r.Grade, r.Confidence)
	}
	if r.Actual != 480 || math.Abs(r.Expected-12) > 3 || r.Window != 1 || r.WindowActual != 480 {
		t.Errorf("result %+v: want actual 480, expected ~12, window 1", r)
	}
	if !r.Time.Equal(minute(600)) {
		t.Errorf("time %v, want %v", r.Time, minute(600))
	}
}

func TestNoGrade(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    float64
	}{
		{"drop-to-zero", 0}, {"small-dip", 8}, {"normal", 12}, {"nan", math.NaN()}, {"negative", -500},
		{"small-rise", 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := steady(t, Config{}, 12, 600)
			if r := m.Update(minute(600), tc.v); r.Grade != 0 {
				t.Errorf("grade %.2f for %g after a steady 12/min", r.Grade, tc.v)
			}
		})
	}
}

func TestUpdateInputs(t *testing.T) {
	m := steady(t, Config{}, 12, 100)
	for _, tc := range []struct {
		name   string
		v      float64
		actual float64
	}{
		{"nan", math.NaN(), 0}, {"negative", -3, 0}, {"-inf", math.Inf(-1), 0},
		{"+inf", math.Inf(1), maxValue}, {"huge", 1e300, maxValue}, {"normal", 7, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := m.Update(minute(100), tc.v) // the same interval each time: replaced
			if r.Actual != tc.actual || math.IsNaN(r.Expected) || r.Grade < 0 || r.Grade > 1 {
				t.Errorf("Update(%g) = %+v, want actual %g", tc.v, r, tc.actual)
			}
		})
	}
}

func TestUpdateTimes(t *testing.T) {
	m := steady(t, Config{}, 12, 100)
	n := m.n

	// Replacing the current interval re-scores it without learning.
	a := m.Update(minute(99).Add(30*time.Second), 480)
	b := m.Update(minute(99), 12)
	if a.Grade < 0.7 || b.Grade != 0 || m.n != n || !a.Time.Equal(minute(99)) {
		t.Errorf("replacement: %+v then %+v, n %d -> %d", a, b, n, m.n)
	}

	// A stale interval changes nothing.
	if r := m.Update(minute(50), 1000); r.Grade != 0 || r.Confidence != 0 || r.Actual != 1000 || m.n != n {
		t.Errorf("stale update: %+v, n %d -> %d", r, n, m.n)
	}

	// A gap of 10 minutes is imputed as 10 zeros.
	m.Update(minute(110), 12)
	if m.n != n+11 {
		t.Errorf("after a gap of 10: %d intervals learned, want %d", m.n-n, 11)
	}

	// A gap of a century is bounded by MaxImpute.
	far := minute(110).Add(100 * 365 * 24 * time.Hour)
	if r := m.Update(far, 5); !r.Time.Equal(far) || m.n > n+12+m.p.maxImpute {
		t.Errorf("long gap: %+v, %d intervals learned", r, m.n-n)
	}
}

func TestConfidence(t *testing.T) {
	cfg := Config{}
	m := NewModel(cfg)
	prev := 0.0
	for i := range 3 * 1440 {
		r := m.Update(minute(i), 5)
		switch {
		case i+1 < 40 && r.Confidence != 0:
			t.Fatalf("interval %d: confidence %g before MinHistory", i, r.Confidence)
		case i+1 == 40 && r.Confidence < 0.7:
			t.Fatalf("confidence %g at MinHistory, want >= 0.7", r.Confidence)
		case r.Confidence < prev:
			t.Fatalf("confidence fell from %g to %g", prev, r.Confidence)
		case i == 1440+39 && (r.Confidence < 0.9 || r.Confidence > 0.95):
			t.Fatalf("confidence after one day %g, want about 0.9", r.Confidence)
		}
		prev = r.Confidence
	}
	if prev < 0.98 || prev > 1 {
		t.Errorf("confidence after three days %g", prev)
	}
}

func TestRun(t *testing.T) {
	pts := []Point{
		{minute(0), 5}, {minute(1), 6},
		{minute(1).Add(20 * time.Second), 7}, // same interval: replaces 6
		{minute(5), 8},                       // minutes 2..4 imputed
		{minute(3), 100},                     // out of order: ignored
		{minute(6), 9},
	}
	res := Run(Config{}, pts)
	var got []float64
	for i, r := range res {
		if !r.Time.Equal(minute(i)) {
			t.Errorf("result %d at %v, want %v", i, r.Time, minute(i))
		}
		got = append(got, r.Actual)
	}
	if fmt.Sprint(got) != "[5 7 0 0 0 8 9]" {
		t.Errorf("actuals %v", got)
	}
	if Run(Config{}, nil) == nil || len(Run(Config{}, nil)) != 0 {
		t.Errorf("Run(nil) should be empty")
	}
}

func TestDetector(t *testing.T) {
	d := New(Config{MaxEntities: 3})
	for i := range 100 {
		for _, k := range []string{"a", "b", "c"} {
			d.Update(k, minute(i), 10)
		}
	}
	if d.Len() != 3 {
		t.Fatalf("Len %d, want 3", d.Len())
	}
	d.Update("a", minute(100), 10)      // a is now the most recent, b the least
	r := d.Update("x", minute(100), 10) // evicts b
	if d.Len() != 3 || r.Confidence != 0 {
		t.Fatalf("after adding x: Len %d, confidence %g", d.Len(), r.Confidence)
	}
	if r := d.Update("a", minute(101), 10); r.Confidence == 0 {
		t.Errorf("a was evicted")
	}
	if r := d.Update("c", minute(101), 10); r.Confidence == 0 {
		t.Errorf("c was evicted")
	}
	if r := d.Update("b", minute(101), 10); r.Confidence != 0 {
		t.Errorf("b was kept: %+v", r)
	}

	// Concurrent use (run with -race).
	d = New(Config{MaxEntities: 50})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				d.Update(fmt.Sprintf("k%d", (g*7+i)%80), minute(i), float64(i%13))
			}
		}()
	}
	wg.Wait()
	if d.Len() != 50 {
		t.Errorf("Len %d, want 50", d.Len())
	}
}

// TestMemoryPerEntity bounds the heap per entity of a Detector (the target is well under AD's
// 400 KB per entity model; BenchmarkDetector100kEntities reports the figure).
func TestMemoryPerEntity(t *testing.T) {
	const n = 20_000
	perEntity := detectorBytesPerEntity(n, 3)
	t.Logf("%.0f bytes per entity", perEntity)
	if perEntity > 4096 {
		t.Errorf("%.0f bytes per entity, want < 4 KB", perEntity)
	}
}

// detectorBytesPerEntity measures the live heap of a Detector holding n entities updated for
// the given number of minutes each.
func detectorBytesPerEntity(n, minutes int) float64 {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("123456789012|us-east-1|ec2:RunInstances|entity-%06d", i)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d := New(Config{MaxEntities: n})
	for i := range minutes {
		for j, k := range keys {
			d.Update(k, minute(i), float64(j%7))
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(d)
	runtime.KeepAlive(keys)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}
