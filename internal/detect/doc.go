// Package detect is a builtin streaming spike detector for per-interval series such as API call
// counts per minute and per (account, region, API, entity). It stands in for OpenSearch's
// Anomaly Detection plugin (Random Cut Forest, high-cardinality detectors) and gives results
// with the same meaning: per entity and interval an anomaly grade in [0,1] (0 = not an
// anomaly), a confidence in [0,1] that stays 0 until the model has 32+shingle intervals and
// grows with history, and the actual and expected values. A monitor alerts, as AD monitors do,
// on grade >= 0.7 and confidence >= 0.7.
//
// # Algorithm
//
// Baseline. Each Model keeps a seasonal profile: one bucket per hour of the Season (24 for a
// day, 168 for a week), each with an exponentially weighted mean and residual variance
// (half-life BaselineHalfLife, 3 seasons by default; a young bucket is shrunk towards the
// global mean and variance). The expectation of an interval is its bucket's mean plus a recent-level
// correction, an EWMA of actual minus seasonal mean with a one-hour half-life (ten minutes while
// the bucket is young, so that the first day's daily rise is followed). It follows legitimate
// ramps and level changes within hours.
//
// Variance. For counts (every value so far an integer) the variance of an interval is at least
// Poisson (the mean) and its overdispersion grows with the square of the level, as for a
// negative binomial; for other metrics it is the learned residual variance, with a small
// relative floor. Sums over windows of w intervals are scored with the sum of the variances
// times a learned calibration factor per window length, the average of the squared
// standardized residual sum, which absorbs autocorrelation and any misfit of the model.
//
// Score. At each interval the windows of the last 1, 2, 4, ... ShingleSize intervals are
// scored: S is the actual sum, E the expected sum, V its variance. A window counts only if it
// is a rise (drops are not spikes) of at least MinExcess in absolute terms (10 calls by
// default, so 0 -> 2 calls never alerts) and at least (1+MinRatio)·E (double by default). Its
// score is -log10 of the upper tail probability P(sum >= S): a quasi-Poisson tail for counts
// (Poisson with mean E/φ at S/φ, φ = V/E, computed with the regularized incomplete gamma
// function) and a Gaussian tail otherwise. The best window gives Score, Window, WindowActual and
// WindowExpected, so an alert can say "saw 3,840 calls in the last 8 minutes, expected ~96". The
// grade is (Score-ScoreLow)/(ScoreHigh-ScoreLow) clamped to [0,1], with ScoreLow 4 and
// ScoreHigh 8: grade 0.7 needs a tail probability of about 1.6e-7. Short windows make a sudden
// burst alert in its first interval; long ones catch a moderate rise sustained over minutes.
//
// Robust learning. An interval is learned once the series moves past it, with a weight that
// falls from 1 at score 2 (p = 0.01) to 0 at ScoreLow, judged on the windows that pass
// MinRatio, before the MinExcess gate and the spike tolerance: the seasonal profile, the
// variances and the calibration do not learn from spikes, so a spike does not raise its own
// baseline. The level correction still learns anomalous intervals with weight
// MinLearnWeight (0.1), so a lasting change is accepted after several hours.
//
// Learning frequent spikes as normal. Like AD, which learns spikes that recur as normal, a
// Model learns a spike tolerance R >= 1 and scores windows against R·E with the spread scaled by
// R. When a spike episode ends (a run of intervals graded above 0 before tolerance), let L be
// 1.5 times its largest actual/expected ratio. If a spike of grade >= 0.5 peaked in the same or
// a neighbouring hour between half a Season and 7 Seasons before, that hour's tolerance rises to
// L (its neighbours' to the square root of L): a nightly batch job alerts on its first two
// nights, then no more. If three or more such episodes happened recently, the global tolerance
// moves half way (in log scale) to L: an hourly burst stops alerting within the day. R is the
// larger of the two. The global tolerance decays with SpikeMemory (24h), the hourly ones with
// a 7-Season half-life. A spike well above the learned ratio still alerts.
//
// Confidence is 0 for the first MinHistory intervals (32+ShingleSize, as AD's cold start), then
// 1-0.25·exp(-age/Season): 0.75 at once, 0.91 after one day, 0.99 after three.
//
// Inputs. Intervals are t.Truncate(Interval). Gaps are imputed as zeros (at most MaxImpute);
// a repeated interval replaces the value; an older interval is ignored. NaN and negative values
// count as 0 and values above 1e15 (and +Inf) as 1e15. Any non-integer value switches the model
// to the non-count (Gaussian) mode for good.
//
// Memory and cost. A Model with the defaults is 1.5 KB: 24 buckets of 40 bytes, 8 ring slots
// of 32 bytes and 300 bytes of state (with a weekly Season, 168 buckets: 7.3 KB). Inside a
// Detector an entity takes about 1.7 KB of heap plus its key (BenchmarkDetector100kEntities),
// against about 400 KB for an AD RCF model per entity. Update takes about 0.3 µs and does not
// allocate. A Detector keeps up to MaxEntities models and evicts the least recently updated.
//
// # Limitations
//
// A brand-new entity has no baseline: its first MinHistory intervals get no grade, whatever
// they hold. Only rises are detected. The first day has no seasonal profile, so a strong daily
// rise may be flagged on day one. A spike that recurs is learned as normal, as in AD; a second
// leak at the same hour on consecutive days, or a burst no larger than the entity's usual
// bursts, may therefore not alert.
package detect
