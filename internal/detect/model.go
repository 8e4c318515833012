package detect

import (
	"math"
	"time"
)

// Result is the outcome for one interval of one series, with the semantics of an Anomaly
// Detection result document.
type Result struct {
	Time       time.Time // start of the interval scored (UTC)
	Actual     float64   // value in the interval (after sanitizing: NaN and negatives are 0)
	Expected   float64   // baseline expectation for the interval
	Score      float64   // -log10 tail probability of the best window, against the tolerated baseline
	Grade      float64   // 0..1, 0 = not an anomaly
	Confidence float64   // 0..1, 0 until MinHistory intervals, about 0.9 after one Season
	// Window is the length in intervals of the scoring window with the highest score (0 when
	// no window exceeds its baseline significantly); WindowActual and WindowExpected are the
	// sums of actual and expected values over it, for alerts such as "saw 3,840 calls in the
	// last 8 minutes, expected about 96".
	Window         int
	WindowActual   float64
	WindowExpected float64
}

// Model scores one series (one entity). It is not safe for concurrent use.
//
// Memory: with the default daily season (24 buckets) and shingle 8, a Model takes 1.5 KB
// (24 buckets × 40 B + 8 ring slots × 32 B + 296 B); with a weekly season (168 buckets) 7.3 KB.
// BenchmarkDetector100kEntities measures the total per entity inside a Detector (about 1.7 KB).
type Model struct {
	p       *params
	buckets []bucket
	ring    []slot // the last ShingleSize intervals; ring[head] is the current one
	head    int
	filled  int
	cur     time.Time // start of the current interval; zero before the first Update
	started bool
	n       int // committed intervals (the current one is not yet learned)

	gMean, gVar, gN float64 // global mean and residual variance, with their sample count
	level           float64 // recent-level correction: EWMA of actual minus seasonal mean
	calib           [maxWindows]float64
	nonCount        bool    // a non-integer value was seen: Gaussian tail instead of Poisson
	grade           float64 // grade of the current interval
	learnW          float64 // its learning weight, from its score ignoring the gates
	tolerance       float64 // global part of ln R, the learned spike tolerance
	episodes        float64 // recent spike episodes of rawGrade >= 0.5, decaying with SpikeMemory
	episodeGrade    float64 // peak rawGrade of the current spike episode (rawGrade > 0)
	episodeRatio    float64 // largest ratio in it
	peakBucket      int     // bucket of the peak
	peakAt          float64 // interval count (1-based) of the peak
	rawGrade        float64 // grade of the current interval without the spike tolerance
	ratio           float64 // actual/expected of the window giving rawGrade
}

type bucket struct {
	mean, vr, n float64 // mean, residual variance, sample count (capped at the memory length)
	tol         float64 // learned spike tolerance (ln R) of this time of season
	lastPeak    float64 // interval count of the last alerting spike peaking here (0: none)
}

type slot struct {
	x    float64 // actual
	mu   float64 // expected
	v    float64 // variance of one interval
	seas float64 // seasonal part of mu (mu minus the level correction, before flooring)
}

// NewModel returns an empty model.
func NewModel(cfg Config) *Model {
	m := &Model{}
	m.init(newParams(cfg))
	return m
}

func (m *Model) init(p *params) {
	bk, ring := m.buckets, m.ring
	if cap(bk) < p.buckets {
		bk = make([]bucket, p.buckets)
	}
	if cap(ring) < p.cfg.ShingleSize {
		ring = make([]slot, p.cfg.ShingleSize)
	}
	bk, ring = bk[:p.buckets], ring[:p.cfg.ShingleSize]
	clear(bk)
	clear(ring)
	*m = Model{p: p, buckets: bk, ring: ring}
	for i := range m.calib {
		m.calib[i] = 1
	}
}

// sanitize maps NaN and negative values to 0 and clamps huge ones (and +Inf) to maxValue.
func sanitize(v float64) float64 {
	switch {
	case !(v > 0): // NaN, negative, zero
		return 0
	case v > maxValue:
		return maxValue
	}
	return v
}

// Update adds the value of the interval containing t and returns the result for it.
//
//   - t is truncated to a multiple of Interval. If it skips intervals since the last call, the
//     skipped ones are imputed as zero (at most MaxImpute of them).
//   - Calling Update again for the current interval replaces its value (a late or corrected
//     count) and scores it again; an interval is learned only once the series moves past it.
//   - A t before the current interval is stale: the model is unchanged and the result has only
//     Time and Actual set.
//   - NaN and negative values count as 0; values above 1e15 (and +Inf) are clamped to 1e15.
func (m *Model) Update(t time.Time, v float64) Result {
	return m.update(t, v, nil)
}

// update is Update, calling emit (if not nil) with the result of every imputed interval.
func (m *Model) update(t time.Time, v float64, emit func(Result)) Result {
	x := sanitize(v)
	iv := time.Duration(m.p.iv)
	ts := t.Truncate(iv).UTC()
	switch {
	case !m.started:
		m.started = true
		m.open(ts, x)
	case ts.Before(m.cur):
		return Result{Time: ts, Actual: x}
	case ts.Equal(m.cur):
		m.ring[m.head].x = x
		m.noteValue(x)
	default:
		m.commit()
		gap := int64(ts.Sub(m.cur)/iv) - 1 // Sub saturates, so this never overflows
		if gap > int64(m.p.maxImpute) {
			gap = int64(m.p.maxImpute)
			m.cur = ts.Add(-time.Duration(gap+1) * iv)
		}
		for range gap {
			m.open(m.cur.Add(iv), 0)
			r := m.score()
			if emit != nil {
				emit(r)
			}
			m.commit()
		}
		m.open(ts, x)
	}
	return m.score()
}

func (m *Model) noteValue(x float64) {
	if x != math.Trunc(x) {
		m.nonCount = true
	}
}

// bucketOf returns the seasonal bucket of the interval starting at t.
func (m *Model) bucketOf(t time.Time) *bucket { return &m.buckets[m.bucketIndex(t)] }

func (m *Model) bucketIndex(t time.Time) int {
	if m.p.seasonS == 0 {
		return 0
	}
	// Offset within the season, from Unix seconds so that any t works.
	off := t.Unix() % m.p.seasonS
	if off < 0 {
		off += m.p.seasonS
	}
	i := (off*int64(time.Second) + int64(t.Nanosecond())) / m.p.bucketNS
	return min(int(i), m.p.buckets-1)
}

// expect returns the expectation, variance and seasonal part for the interval starting at t.
// A young bucket is shrunk towards the global mean and variance.
func (m *Model) expect(t time.Time) (mu, v, seas float64) {
	b := m.bucketOf(t)
	k := m.p.shrink
	seas = (b.n*b.mean + k*m.gMean) / (b.n + k)
	v = (b.n*b.vr + k*m.gVar) / (b.n + k)
	mu = math.Max(seas+m.level, 0)
	if !m.nonCount {
		// Counts: at least Poisson, and overdispersion (variance in excess of the mean) that
		// grows with the square of the level, as for a negative binomial, so that a level above
		// the bucket's usual one (a ramp, a busy day) widens the band in proportion.
		mu = math.Max(mu, countFloor)
		c2 := math.Max(0, v-seas) / math.Max(seas*seas, 1)
		v = math.Max(v, mu+c2*mu*mu)
	} else {
		scale := math.Max(mu, m.gMean)
		v = math.Max(v, math.Max(relVarFlr*scale*scale, absVarFlr))
	}
	return mu, v, seas
}

// open starts the interval at t with value x.
func (m *Model) open(t time.Time, x float64) {
	m.noteValue(x)
	mu, v, seas := m.expect(t)
	m.head = (m.head + 1) % len(m.ring)
	m.ring[m.head] = slot{x: x, mu: mu, v: v, seas: seas}
	m.filled = min(m.filled+1, len(m.ring))
	m.cur = t
}

func (m *Model) warm() bool { return m.n+1 >= m.p.minHistory }

// windows calls f with the sums of actual, expected and variance over each scoring window
// ending at the current interval.
func (m *Model) windows(f func(i, w int, s, e, v float64)) {
	var s, e, v float64
	i, idx := 0, m.head
	for k := 1; k <= m.filled && i < len(m.p.windows); k++ {
		sl := &m.ring[idx]
		s += sl.x
		e += sl.mu
		v += sl.v
		if k == m.p.windows[i] {
			f(i, k, s, e, v)
			i++
		}
		idx--
		if idx < 0 {
			idx = len(m.ring) - 1
		}
	}
}

// score computes the result of the current interval.
func (m *Model) score() Result {
	sl := m.ring[m.head]
	r := Result{Time: m.cur, Actual: sl.x, Expected: sl.mu}
	m.grade, m.rawGrade, m.ratio, m.learnW = 0, 0, 0, 1
	if !m.warm() {
		return r
	}
	age := float64(m.n + 1 - m.p.minHistory)
	r.Confidence = 1 - 0.25*math.Exp(-age/m.p.confTau)
	// Spikes up to tol times the baseline have been learned as normal: windows are scored
	// against tol·e, with the spread scaled alike.
	tol := math.Exp(max(m.tolerance, m.bucketOf(m.cur).tol))
	var learn float64   // best untolerated score passing the MinRatio gate: sets the learning weight
	var rawBest float64 // best untolerated score passing both gates
	m.windows(func(i, w int, s, e, v float64) {
		v *= math.Max(1, m.calib[i])
		if s < (1+m.p.minRatio)*e {
			return
		}
		raw := m.windowScore(s, e, v)
		learn = math.Max(learn, raw)
		if s-e < m.p.minExcess || raw == 0 {
			return
		}
		if raw > rawBest {
			rawBest, m.ratio = raw, s/e
		}
		sc := raw
		if tol > 1 {
			sc = m.windowScore(s, e*tol, v*tol*tol)
		}
		if sc > r.Score {
			r.Score, r.Window, r.WindowActual, r.WindowExpected = sc, w, s, e
		}
	})
	r.Grade = clamp01((r.Score - m.p.scoreLow) / m.p.scoreSpan)
	m.grade = r.Grade
	m.rawGrade = clamp01((rawBest - m.p.scoreLow) / m.p.scoreSpan)
	// Learning weight: full below learnFull, down to 0 at ScoreLow. The MinExcess gate and the
	// spike tolerance do not apply: a burst too small to alert on, or a learned one, is still
	// kept out of the baseline.
	m.learnW = 1 - clamp01((learn-m.p.learnFull)/(m.p.scoreLow-m.p.learnFull))
	return r
}

// windowScore returns -log10 P(sum >= s) for a window with expected sum e and variance v, or 0
// when the excess is under one standard deviation.
func (m *Model) windowScore(s, e, v float64) float64 {
	z := (s - e) / math.Sqrt(v)
	if !(z >= 1) {
		return 0
	}
	var lp float64
	if m.nonCount {
		lp = logNormalTail(z)
	} else {
		// Quasi-Poisson: scale by the dispersion so that mean and variance both match.
		phi := math.Max(1, v/e)
		lp = logPoissonTail(s/phi, e/phi)
	}
	return math.Max(0, -lp/ln10)
}

// commit learns the current interval, weighted by how normal it was: w (from learnW, 0 for a
// clear spike) for the seasonal profile, the variances and the calibration, so that a spike
// does not teach the baseline; at least MinLearnWeight for the level correction, so that a
// lasting change is eventually followed.
func (m *Model) commit() {
	sl := m.ring[m.head]
	w, wl := 1.0, 1.0
	warm := m.warm()
	if warm {
		w = m.learnW
		wl = math.Max(m.p.minLearn, w)
	}
	resid := sl.x - sl.mu
	r2 := resid * resid
	switch {
	case m.n == 0:
		r2 = 0 // the first interval had no prediction
	case warm:
		r2 = math.Min(r2, clipSigma2*sl.v)
	}

	b := m.bucketOf(m.cur)
	if w > 0 {
		// Running means over the first samples (weighted counts), then EWMAs.
		b.n = math.Min(b.n+w, 1/m.p.bucketAlpha)
		a := w / b.n
		b.mean += a * (sl.x - b.mean)
		b.vr += a * (r2 - b.vr)

		m.gN = math.Min(m.gN+w, 1/m.p.globalAlpha)
		a = w / m.gN
		m.gMean += a * (sl.x - m.gMean)
		m.gVar += a * (r2 - m.gVar)
	}
	// The level follows faster while the bucket is young (its profile still mostly the global
	// mean), so that the first day's daily rise is followed rather than flagged. Only normal
	// intervals (weight w) feed the fast part; MinLearnWeight applies to the slow one.
	young := m.p.shrink / (b.n + m.p.shrink)
	alpha := m.p.levelAlpha*wl + math.Max(0, m.p.youngAlpha*young-m.p.levelAlpha)*w
	m.level += alpha * (sl.x - sl.seas - m.level)

	// Calibrate once the windows no longer hold the first interval (which had no prediction).
	if k := m.n - len(m.ring) + 1; k > 0 {
		ac := w * math.Max(m.p.calibAlpha, 1/float64(k))
		m.windows(func(i, _ int, s, e, v float64) {
			rr := (s - e) * (s - e) / v
			if warm {
				rr = math.Min(rr, clipSigma2)
			}
			m.calib[i] += ac * (rr - m.calib[i])
		})
	}
	if warm && m.p.spikeOn {
		m.learnSpike()
	}
	if m.n < math.MaxInt {
		m.n++
	}
}

// learnSpike updates the learned spike tolerance ln R = max(global part, bucket part): windows
// are scored against R times their baseline. Spike episodes are runs of intervals whose grade
// without the tolerance is above 0 (so that a tolerated spike still counts as one). When one
// ends, let L be the log of 1.5 times the largest actual/expected ratio of its best windows, a
// tolerance that would have made it normal with some margin:
//   - if a spike of grade >= 0.5 peaked in the same or a neighbouring time-of-season bucket
//     between half a Season and 7 Seasons ago, the bucket part of the peak's bucket rises to L
//     and its neighbours' to L/2: a job that runs every day at about the same time alerts on
//     its first days only;
//   - if the model saw frequentEpisodes or more episodes of grade >= 0.5 recently, the global
//     part moves half way to L: spikes that come several times a day become normal, at any time.
//
// The global part and the episode count decay with SpikeMemory, the bucket parts with a
// half-life of 7 Seasons, so a learned spike is forgotten when it stops recurring.
func (m *Model) learnSpike() {
	switch {
	case m.rawGrade > 0:
		if m.rawGrade > m.episodeGrade {
			m.episodeGrade, m.peakBucket, m.peakAt = m.rawGrade, m.bucketIndex(m.cur), float64(m.n+1)
		}
		m.episodeRatio = math.Max(m.episodeRatio, m.ratio)
	case m.episodeGrade > 0:
		l := math.Log(math.Max(1, m.episodeRatio)) + tolMargin
		b, nb := m.peakBucket, len(m.buckets)
		near := []int{b, (b + 1) % nb, (b + nb - 1) % nb}
		if nb < 3 {
			near = near[:1]
		}
		for _, j := range near {
			last := m.buckets[j].lastPeak
			if age := m.peakAt - last; last > 0 && age >= m.p.seasonN/2 && age <= 7*m.p.seasonN {
				m.buckets[b].tol = math.Max(m.buckets[b].tol, l)
				for _, k := range near[1:] {
					m.buckets[k].tol = math.Max(m.buckets[k].tol, l/2)
				}
				break
			}
		}
		if m.episodeGrade >= 0.5 {
			m.buckets[b].lastPeak = m.peakAt
			m.episodes++
			if m.episodes >= frequentEpisodes && l > m.tolerance {
				m.tolerance += spikeLearn * (l - m.tolerance)
			}
		}
		m.episodeGrade, m.episodeRatio = 0, 0
	}
	m.tolerance *= m.p.spikeDecay
	m.episodes *= m.p.spikeDecay
	m.bucketOf(m.cur).tol *= m.p.tolDecay
}

func clamp01(x float64) float64 {
	switch {
	case x > 0 && x < 1:
		return x
	case x >= 1:
		return 1
	}
	return 0 // also NaN
}
