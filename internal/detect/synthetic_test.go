package detect

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// Synthetic per-minute call counts: Poisson (optionally overdispersed) around a diurnal profile,
// with injected 10x spikes and legitimate changes.

var synthStart = time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC) // a Monday

const synthDays = 3

// diurnal is the daily profile: 1.7x at 14:00 UTC, 0.3x at 02:00.
func diurnal(t time.Time) float64 {
	h := float64(t.Hour()) + float64(t.Minute())/60
	return 1 + 0.7*math.Cos(2*math.Pi*(h-14)/24)
}

// poisson draws from Poisson(lam): Knuth's method for small lam, Hörmann's PTRS otherwise.
func poisson(r *rand.Rand, lam float64) float64 {
	if lam <= 0 {
		return 0
	}
	if lam < 10 {
		l, k, p := math.Exp(-lam), 0.0, 1.0
		for {
			p *= r.Float64()
			if p <= l {
				return k
			}
			k++
		}
	}
	slam, loglam := math.Sqrt(lam), math.Log(lam)
	b := 0.931 + 2.53*slam
	a := -0.059 + 0.02483*b
	invAlpha := 1.1239 + 1.1328/(b-3.4)
	vr := 0.9277 - 3.6224/(b-2)
	for {
		u := r.Float64() - 0.5
		v := r.Float64()
		us := 0.5 - math.Abs(u)
		k := math.Floor((2*a/us+b)*u + lam + 0.43)
		if us >= 0.07 && v <= vr {
			return k
		}
		if k < 0 || (us < 0.013 && v > us) {
			continue
		}
		lg, _ := math.Lgamma(k + 1)
		if math.Log(v)+math.Log(invAlpha)-math.Log(a/(us*us)+b) <= -lam+k*loglam-lg {
			return k
		}
	}
}

// gamma draws from Gamma(k, 1) (Marsaglia and Tsang), k >= 1.
func gamma(r *rand.Rand, k float64) float64 {
	d := k - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := r.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := r.Float64()
		if math.Log(u) < x*x/2+d-d*v+d*math.Log(v) {
			return d * v
		}
	}
}

// span is a half-open range of minutes since synthStart.
type span struct{ from, to int }

func (s span) has(i int) bool { return i >= s.from && i < s.to }

// synthEntity describes one generated series.
type synthEntity struct {
	name   string
	base   float64                   // calls per minute at profile 1
	cv     float64                   // coefficient of variation of a gamma-distributed rate (0: Poisson)
	spikes int                       // number of 10x spikes to inject, one per day at most
	factor func(minute int) float64  // extra rate multiplier (nil: 1)
	rate   func(t time.Time) float64 // replaces base·diurnal when set
	points []Point                   // generated
	spans  []span                    // injected spikes
}

// generate fills e.points and e.spans for synthDays days of minutes.
func (e *synthEntity) generate(r *rand.Rand) {
	n := synthDays * 24 * 60
	for d := range min(e.spikes, synthDays) {
		// A spike starts between 02:00 and 21:00 (so day 0 is past the warm-up), at least 3
		// hours of the day away from the previous spikes (a spike that recurs at the same time
		// of day is learned as normal: TestRecurringSpikesLearned), and lasts 20 to 60 minutes.
		from := d*1440 + 120 + r.IntN(19*60)
		for !e.farFrom(from, 180) {
			from = d*1440 + 120 + r.IntN(19*60)
		}
		e.spans = append(e.spans, span{from, from + 20 + r.IntN(41)})
	}
	e.points = make([]Point, n)
	for i := range n {
		t := synthStart.Add(time.Duration(i) * time.Minute)
		lam := e.base * diurnal(t)
		if e.rate != nil {
			lam = e.rate(t)
		}
		if e.factor != nil {
			lam *= e.factor(i)
		}
		for _, s := range e.spans {
			if s.has(i) {
				lam *= 10
			}
		}
		if e.cv > 0 {
			// Gamma-mixed Poisson: negative binomial counts.
			k := 1 / (e.cv * e.cv)
			lam *= gamma(r, k) / k
		}
		e.points[i] = Point{t, poisson(r, lam)}
	}
}

// farFrom says whether minute i is at least gap minutes of the day away from every spike start.
func (e *synthEntity) farFrom(i, gap int) bool {
	for _, s := range e.spans {
		if d := (i - s.from) % 1440; d < gap || d > 1440-gap {
			return false
		}
	}
	return true
}

// synthOutcome summarizes the results of one entity.
type synthOutcome struct {
	detected, spikes int   // spikes with grade >= 0.7 within 5 intervals of their start
	delays           []int // intervals from spike start to the first grade >= 0.7
	falseEpisodes    int   // alerting episodes that start outside spikes (and their shingle tail)
	maxGradeOutside  float64
}

func evalSynth(e *synthEntity, res []Result, shingle int) synthOutcome {
	var o synthOutcome
	o.spikes = len(e.spans)
	for _, s := range e.spans {
		for i := s.from; i < s.from+5 && i < len(res); i++ {
			if res[i].Grade >= 0.7 {
				o.detected++
				o.delays = append(o.delays, i-s.from)
				break
			}
		}
	}
	inSpike := func(i int) bool {
		for _, s := range e.spans {
			if i >= s.from && i < s.to+shingle {
				return true
			}
		}
		return false
	}
	prev := false
	for i, r := range res {
		a := alerting(r)
		if a && !prev && !inSpike(i) {
			o.falseEpisodes++
		}
		prev = a
		if !inSpike(i) {
			o.maxGradeOutside = math.Max(o.maxGradeOutside, r.Grade)
		}
	}
	return o
}

func synthEntities() []*synthEntity {
	rampFrom, rampTo := 1440+6*60, 1440+18*60 // day 1, 06:00 to 18:00: the rate triples
	ramp := func(i int) float64 {
		return 1 + 2*math.Min(1, math.Max(0, float64(i-rampFrom)/float64(rampTo-rampFrom)))
	}
	return []*synthEntity{
		{name: "quiet-2/min", base: 2, spikes: 3},
		{name: "medium-20/min", base: 20, spikes: 3},
		{name: "busy-300/min", base: 300, spikes: 3},
		{name: "busy-overdispersed", base: 300, cv: 0.3, spikes: 3},
		{name: "medium-overdispersed", base: 20, cv: 0.5, spikes: 3},
		{name: "flat-50/min", base: 50, spikes: 3, rate: func(time.Time) float64 { return 50 }},
		{name: "ramp-20->60/min", base: 20, factor: ramp},
		{name: "ramp-busy-300->900", base: 300, cv: 0.2, factor: ramp},
	}
}

// Bounds for TestSynthetic, set slightly above what the detector achieves over the 5 seeds
// (1 false alert episode in 120 entity-days, 0.008 per entity-day; highest grade on a
// legitimate ramp 0.50).
const (
	synthMaxFalsePerEntityDay = 0.03
	synthMaxRampGrade         = 0.6
)

func TestSynthetic(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5}
	cfg := Config{}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%-24s %6s %8s %-12s %8s %12s\n", "entity#seed", "spikes", "detected", "delays", "falseEp", "maxGradeElse")
	var detected, spikes, falseEp, entityDays int
	for _, seed := range seeds {
		r := rand.New(rand.NewPCG(seed, 42))
		for _, e := range synthEntities() {
			e.generate(r)
			res := Run(cfg, e.points)
			if len(res) != len(e.points) {
				t.Fatalf("%s: %d results for %d points", e.name, len(res), len(e.points))
			}
			o := evalSynth(e, res, DefaultShingleSize)
			detected += o.detected
			spikes += o.spikes
			falseEp += o.falseEpisodes
			entityDays += synthDays
			fmt.Fprintf(&sb, "%-24s %6d %8d %-12s %8d %12.2f\n", fmt.Sprintf("%s#%d", e.name, seed),
				o.spikes, o.detected, fmt.Sprint(o.delays), o.falseEpisodes, o.maxGradeOutside)
			if o.detected != o.spikes {
				for _, s := range e.spans {
					t.Errorf("%s seed %d: spike at %s (%d min): grades %v", e.name, seed,
						e.points[s.from].Time.Format("Jan 2 15:04"), s.to-s.from, grades(res[s.from:s.from+5]))
				}
			}
			if strings.HasPrefix(e.name, "ramp") && o.maxGradeOutside >= synthMaxRampGrade {
				t.Errorf("%s seed %d: legitimate ramp got grade %.2f", e.name, seed, o.maxGradeOutside)
			}
		}
	}
	perDay := float64(falseEp) / float64(entityDays)
	fmt.Fprintf(&sb, "spikes detected within 5 intervals: %d/%d; false alert episodes: %d in %d entity-days (%.3f per entity-day)\n",
		detected, spikes, falseEp, entityDays, perDay)
	t.Log("\n" + sb.String())
	if perDay > synthMaxFalsePerEntityDay {
		t.Errorf("false alert episodes per entity-day %.3f > %.3f", perDay, synthMaxFalsePerEntityDay)
	}
}

func grades(rs []Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%.0f/%.1f:%.2f", r.Actual, r.Expected, r.Grade))
	}
	return out
}

// TestQuietEntity: an entity with about 0.01 calls per minute does not alert when it goes to
// 0.2 per minute, and alerts within 5 intervals when it goes to 30 per minute.
func TestQuietEntity(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after float64
		alert bool
	}{
		{"to-0.2/min", 0.2, false},
		{"to-30/min", 30, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range uint64(10) {
				r := rand.New(rand.NewPCG(seed, 7))
				change := 2 * 1440 // day 2, 00:00, for 12 hours
				var pts []Point
				for i := range change + 720 {
					lam := 0.01
					if i >= change {
						lam = tc.after
					}
					pts = append(pts, Point{synthStart.Add(time.Duration(i) * time.Minute), poisson(r, lam)})
				}
				res := Run(Config{}, pts)
				first := -1
				for i := change; i < len(res); i++ {
					if alerting(res[i]) {
						first = i - change
						break
					}
				}
				switch {
				case tc.alert && (first < 0 || first >= 5):
					t.Errorf("seed %d: first alert %d intervals after the change, want < 5", seed, first)
				case !tc.alert && first >= 0:
					t.Errorf("seed %d: alert %d intervals after the change: %+v", seed, first, res[change+first])
				}
			}
		})
	}
}

// TestRecurringSpikesLearned: spikes that recur are learned as normal, as AD learns frequent
// spikes. A 15-minute 10x batch job every day at 03:00 alerts on its first days only, and a
// one-off 10x spike at another time of day still alerts afterwards. A 5-minute 10x burst every
// hour stops alerting within a day; 10x is then normal for the entity at any time, but a one-off
// 50x spike still alerts.
func TestRecurringSpikesLearned(t *testing.T) {
	const days = 7
	for _, tc := range []struct {
		name      string
		burst     func(i int) bool // minute index -> inside a burst
		maxAlerts int              // alert episodes over the first days ...
		quietFrom int              // ... and none from this day on
		oneOff    float64          // factor of the one-off spike on the last day
	}{
		{"daily-03:00-15min", func(i int) bool { m := i % 1440; return m >= 180 && m < 195 }, 3, 3, 10},
		{"hourly-5min", func(i int) bool { return i%60 >= 30 && i%60 < 35 }, 12, 1, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(11, 12))
			oneOff := span{days*1440 + 14*60 + 10, days*1440 + 14*60 + 40} // day 7, 14:10
			var pts []Point
			for i := range oneOff.to + 60 {
				tm := synthStart.Add(time.Duration(i) * time.Minute)
				lam := 20 * diurnal(tm)
				switch {
				case oneOff.has(i):
					lam *= tc.oneOff
				case tc.burst(i):
					lam *= 10
				}
				pts = append(pts, Point{tm, poisson(r, lam)})
			}
			res := Run(Config{}, pts)
			perDay := make([]int, days+1)
			prev := false
			for i, r := range res {
				a := alerting(r)
				if a && !prev {
					perDay[i/1440]++
				}
				prev = a
			}
			t.Logf("alert episodes per day: %v", perDay)
			total := 0
			for d, n := range perDay[:days] {
				total += n
				if d >= tc.quietFrom && n > 0 {
					t.Errorf("day %d: %d alert episodes; the recurring spike should be learned by now", d, n)
				}
			}
			if total > tc.maxAlerts {
				t.Errorf("%d alert episodes, want at most %d", total, tc.maxAlerts)
			}
			hit := false
			for i := oneOff.from; i < oneOff.from+5; i++ {
				hit = hit || alerting(res[i])
			}
			if !hit {
				t.Errorf("one-off spike on day %d not alerted within 5 intervals: %v", days, grades(res[oneOff.from:oneOff.from+5]))
			}
		})
	}
}
