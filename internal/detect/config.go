package detect

import (
	"math"
	"time"
)

// Config tunes a Model or Detector. The zero value selects every default; for the float
// thresholds (MinExcess, MinRatio, MinLearnWeight) zero selects the default and a negative value
// means "none".
type Config struct {
	// Interval is the length of one interval of the series (default 1 minute). Times passed to
	// Update are truncated with time.Time.Truncate(Interval), so intervals that divide a day
	// start at UTC midnight.
	Interval time.Duration
	// ShingleSize is the longest scoring window in intervals, like AD's shingle (default 8,
	// at most 128). Windows of 1, 2, 4, ... intervals up to ShingleSize are all scored.
	ShingleSize int
	// MinHistory is the number of intervals (imputed ones included) before results carry a
	// grade or a confidence above 0; default 32+ShingleSize, as AD's cold start.
	MinHistory int
	// Season is the period of the seasonal profile: 24h (default) for a daily pattern, 168h for
	// a weekly one. A negative Season disables seasonality (a single level).
	Season time.Duration
	// SeasonBuckets is the number of time-of-season buckets (default one per hour of Season,
	// so 24 for a day and 168 for a week; at most one per interval).
	SeasonBuckets int
	// BaselineHalfLife is how fast the seasonal profile forgets (default 3 Seasons, or 3 days
	// without seasonality).
	BaselineHalfLife time.Duration
	// LevelHalfLife is the half-life of the recent-level correction that follows legitimate
	// drifts and ramps within the day (default 1 hour).
	LevelHalfLife time.Duration
	// MinExcess is the smallest excess (actual minus expected, summed over a scoring window) that
	// may get a grade above 0, in units of the value (default 10: with per-minute call counts,
	// 0 -> 2 calls is never an alert). Set it to the metric's scale for non-count series.
	MinExcess float64
	// MinRatio is the smallest relative excess over a scoring window that may get a grade above
	// 0: the window's actual sum must be at least (1+MinRatio) times its expected sum
	// (default 1, i.e. double the baseline).
	MinRatio float64
	// ScoreLow and ScoreHigh map the score (-log10 of the tail probability) to the grade:
	// grade = (score-ScoreLow)/(ScoreHigh-ScoreLow) clamped to [0,1]. Defaults 4 and 8, so the
	// alert grade 0.7 needs a tail probability below about 1.6e-7.
	ScoreLow, ScoreHigh float64
	// MinLearnWeight is the least weight with which an anomalous interval still moves the
	// recent-level correction (default 0.1), so that a lasting change of level is followed,
	// about ten times slower than a normal one. The seasonal profile and the variances do not
	// learn from anomalous intervals at all.
	MinLearnWeight float64
	// SpikeMemory is the half-life of the global part of the learned spike tolerance, for
	// spikes that recur several times a day (default 24h; negative disables spike learning
	// altogether). See the package documentation.
	SpikeMemory time.Duration
	// MaxImpute bounds the zeros imputed for one gap (default one Season of intervals, at
	// most 100,000, at least 4*ShingleSize); a longer silence is treated as that long.
	MaxImpute int
	// MaxEntities bounds the models a Detector keeps (default 100,000); the least recently
	// updated is evicted first.
	MaxEntities int
}

// Defaults.
const (
	DefaultInterval       = time.Minute
	DefaultShingleSize    = 8
	MaxShingleSize        = 128
	DefaultSeason         = 24 * time.Hour
	DefaultLevelHalfLife  = time.Hour
	DefaultMinExcess      = 10
	DefaultMinRatio       = 1
	DefaultScoreLow       = 4
	DefaultScoreHigh      = 8
	DefaultMinLearnWeight = 0.1
	DefaultMaxEntities    = 100_000

	DefaultSpikeMemory = 24 * time.Hour

	spikeLearn       = 0.5          // fraction (in log scale) of a frequent episode's peak learned
	tolMargin        = 0.4054651081 // ln 1.5: a learned spike tolerance covers 1.5 times the ratio seen
	frequentEpisodes = 3            // recent episodes from which spikes count as frequent
	learnFull        = 2            // intervals scoring below this (p > 0.01) are learned with full weight
	maxWindows       = 8            // windows 1, 2, 4, ..., 64, 128
	clipSigma2       = 25           // squared residuals are winsorized at 5 sigma before they update a variance
	maxDefaultImpute = 100_000      // cap of the default MaxImpute
	maxValue         = 1e15         // larger inputs (and +Inf) are clamped here
	countFloor       = 1e-3         // least expected count per interval
	relVarFlr        = 1e-4         // non-count series: variance floor as a fraction of the squared level
	absVarFlr        = 1e-12        // and an absolute floor
)

// params are a Config with defaults applied, converted to per-interval constants. They are
// shared by all models of a Detector.
type params struct {
	cfg         Config
	iv          int64 // Interval in ns
	windows     []int // window lengths, increasing, last = ShingleSize
	buckets     int
	seasonS     int64   // season in whole seconds (0: no seasonality)
	bucketNS    int64   // bucket width in ns
	bucketAlpha float64 // least per-bucket learning rate (seasonal half-life)
	globalAlpha float64 // least learning rate of the global mean and variance
	levelAlpha  float64 // level correction learning rate
	youngAlpha  float64 // its rate while a bucket is young (LevelHalfLife/6)
	calibAlpha  float64 // window variance calibration learning rate
	shrink      float64 // pseudo-samples pulling a young bucket towards the global mean
	confTau     float64 // intervals for confidence to grow (one Season)
	seasonN     float64 // intervals in one Season (or one day without seasonality)
	spikeDecay  float64 // per-interval decay of the learned spike tolerance (1: off)
	spikeOn     bool
	tolDecay    float64 // per-visit decay of a bucket's spike tolerance (half-life 7 Seasons)
	minHistory  int
	maxImpute   int
	minExcess   float64
	minRatio    float64
	minLearn    float64
	scoreLow    float64
	learnFull   float64 // score up to which an interval is learned with full weight
	scoreSpan   float64
	maxEntities int
}

func orDuration(v, def time.Duration) time.Duration {
	if v <= 0 {
		return def
	}
	return v
}

func orFloat(v, def float64) float64 {
	switch {
	case v < 0 || math.IsNaN(v):
		return 0
	case v == 0:
		return def
	}
	return v
}

// alphaForHalfLife returns the EWMA rate whose weights halve every n samples.
func alphaForHalfLife(n float64) float64 {
	if n < 1 {
		n = 1
	}
	return 1 - math.Exp2(-1/n)
}

func newParams(cfg Config) *params {
	cfg.Interval = orDuration(cfg.Interval, DefaultInterval)
	if cfg.ShingleSize <= 0 {
		cfg.ShingleSize = DefaultShingleSize
	}
	cfg.ShingleSize = min(cfg.ShingleSize, MaxShingleSize)
	if cfg.MinHistory <= 0 {
		cfg.MinHistory = 32 + cfg.ShingleSize
	}
	if cfg.Season == 0 {
		cfg.Season = DefaultSeason
	}
	season := cfg.Season.Truncate(time.Second)
	if season < time.Second || season < 2*cfg.Interval {
		season = 0
	}
	if cfg.SeasonBuckets <= 0 {
		cfg.SeasonBuckets = max(1, int(season/time.Hour))
	}
	if season > 0 {
		cfg.SeasonBuckets = min(cfg.SeasonBuckets, int(season/cfg.Interval))
	} else {
		cfg.SeasonBuckets = 1
	}
	period := season // the Season, or one day without seasonality
	if period == 0 {
		period = 24 * time.Hour
	}
	cfg.BaselineHalfLife = orDuration(cfg.BaselineHalfLife, 3*period)
	cfg.LevelHalfLife = orDuration(cfg.LevelHalfLife, DefaultLevelHalfLife)
	if !(cfg.ScoreLow > 0) || math.IsInf(cfg.ScoreLow, 0) {
		cfg.ScoreLow = DefaultScoreLow
	}
	if !(cfg.ScoreHigh > cfg.ScoreLow) || math.IsInf(cfg.ScoreHigh, 0) {
		cfg.ScoreHigh = max(DefaultScoreHigh, cfg.ScoreLow+1)
	}
	if cfg.MaxImpute <= 0 {
		cfg.MaxImpute = int(min(period/cfg.Interval, maxDefaultImpute))
	}
	cfg.MaxImpute = max(cfg.MaxImpute, 4*cfg.ShingleSize)
	if cfg.MaxEntities <= 0 {
		cfg.MaxEntities = DefaultMaxEntities
	}

	p := &params{
		cfg:         cfg,
		iv:          int64(cfg.Interval),
		buckets:     cfg.SeasonBuckets,
		minHistory:  cfg.MinHistory,
		maxImpute:   cfg.MaxImpute,
		minExcess:   orFloat(cfg.MinExcess, DefaultMinExcess),
		minRatio:    orFloat(cfg.MinRatio, DefaultMinRatio),
		minLearn:    math.Min(1, orFloat(cfg.MinLearnWeight, DefaultMinLearnWeight)),
		scoreLow:    cfg.ScoreLow,
		learnFull:   math.Min(learnFull, cfg.ScoreLow/2),
		scoreSpan:   cfg.ScoreHigh - cfg.ScoreLow,
		maxEntities: cfg.MaxEntities,
	}
	for w := 1; w < cfg.ShingleSize; w *= 2 {
		p.windows = append(p.windows, w)
	}
	p.windows = append(p.windows, cfg.ShingleSize)

	iv := float64(cfg.Interval)
	seasonIntervals := float64(period) / iv
	perBucket := seasonIntervals / float64(p.buckets) // samples a bucket gets per season
	if season > 0 {
		p.seasonS = int64(season / time.Second)
		p.bucketNS = int64(season) / int64(p.buckets)
	}
	p.bucketAlpha = alphaForHalfLife(float64(cfg.BaselineHalfLife) / float64(period) * perBucket)
	p.globalAlpha = alphaForHalfLife(float64(cfg.BaselineHalfLife) / iv)
	p.levelAlpha = alphaForHalfLife(float64(cfg.LevelHalfLife) / iv)
	p.youngAlpha = alphaForHalfLife(float64(cfg.LevelHalfLife) / 6 / iv)
	p.calibAlpha = alphaForHalfLife(seasonIntervals / 4)
	p.shrink = math.Max(1, perBucket/4)
	p.confTau = seasonIntervals
	p.seasonN = seasonIntervals
	p.spikeOn = cfg.SpikeMemory >= 0
	p.tolDecay = math.Exp2(-1 / (7 * perBucket))
	p.spikeDecay = math.Exp2(-iv / float64(orDuration(cfg.SpikeMemory, DefaultSpikeMemory)))
	return p
}
