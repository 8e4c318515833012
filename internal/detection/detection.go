// Package detection runs the builtin detector over the counts in OpenSearch: live, one interval at
// a time behind a window delay, and as a backtest over a time range. It turns scores into alert
// signals. (Where the OpenSearch Anomaly Detection plugin is installed, internal/adsync keeps its
// detectors instead, and the hub takes their results through the alert webhook.)
package detection

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/spikewatch/spikewatch/internal/alerts"
	"github.com/spikewatch/spikewatch/internal/catalog"
	"github.com/spikewatch/spikewatch/internal/detect"
	"github.com/spikewatch/spikewatch/internal/search"
)

// Key is one detector entity: an account (and entity) of an API, as AD's category fields.
type Key struct {
	API, AccountID, Entity string
}

func (k Key) String() string { return k.API + "|" + k.AccountID + "|" + k.Entity }

// Sink receives signals (an alerts.Manager).
type Sink interface {
	Observe(ctx context.Context, s alerts.Signal) error
	Tick(ctx context.Context, now time.Time) error
}

func value(cat *catalog.Catalog, p search.SeriesPoint) (float64, bool) {
	api, ok := cat.ByID(p.API)
	if !ok {
		return 0, false
	}
	if api.Detector.Feature == "units" {
		return float64(p.Units), true
	}
	return float64(p.Calls), true
}

// Series reads per-minute feature values per key from OpenSearch over [from, to).
func Series(ctx context.Context, sc *search.Client, prefix string, cat *catalog.Catalog, from, to time.Time) (map[Key][]detect.Point, error) {
	out := map[Key][]detect.Point{}
	err := sc.Series(ctx, prefix, from, to, func(p search.SeriesPoint) error {
		v, ok := value(cat, p)
		if !ok {
			return nil
		}
		k := Key{p.API, p.AccountID, p.Entity}
		out[k] = append(out[k], detect.Point{Time: p.Minute, Value: v})
		return nil
	})
	if err != nil {
		return nil, err
	}
	for k := range out {
		pts := out[k]
		sort.Slice(pts, func(i, j int) bool { return pts[i].Time.Before(pts[j].Time) })
	}
	return out, nil
}

// Backtest scores every key over [from, to) and feeds the signals to sink in time order (so the
// alert rules see the same sequence as live), calling Tick after each minute. It returns the number
// of keys scored.
func Backtest(ctx context.Context, sc *search.Client, prefix string, cat *catalog.Catalog, cfg detect.Config, from, to time.Time, sink Sink, progress func(string)) (int, error) {
	series, err := Series(ctx, sc, prefix, cat, from, to)
	if err != nil {
		return 0, err
	}
	if progress != nil {
		progress(fmt.Sprintf("scoring %d series over %s", len(series), to.Sub(from).Round(time.Minute)))
	}
	var sigs []alerts.Signal
	keys := make([]Key, 0, len(series))
	for k := range series {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, k := range keys {
		pts := series[k]
		// Start every series at the range start so that its quiet beginning counts as history.
		if len(pts) > 0 && pts[0].Time.After(from) {
			pts = append([]detect.Point{{Time: from.Truncate(time.Minute), Value: 0}}, pts...)
		}
		// End every series at the range end: the quiet after a spike is scored too.
		if last := pts[len(pts)-1].Time; last.Before(to.Add(-time.Minute)) {
			pts = append(pts, detect.Point{Time: to.Add(-time.Minute).Truncate(time.Minute), Value: 0})
		}
		for _, r := range detect.Run(cfg, pts) {
			if r.Grade <= 0 {
				continue
			}
			sigs = append(sigs, alerts.Signal{Time: r.Time, AccountID: k.AccountID, API: k.API, Entity: k.Entity,
				Grade: r.Grade, Confidence: r.Confidence, Actual: r.Actual, Expected: r.Expected, Source: "builtin"})
		}
	}
	sort.SliceStable(sigs, func(i, j int) bool { return sigs[i].Time.Before(sigs[j].Time) })
	var last time.Time
	for _, s := range sigs {
		if !s.Time.Equal(last) {
			if err := sink.Tick(ctx, s.Time); err != nil {
				return len(series), err
			}
			last = s.Time
		}
		if err := sink.Observe(ctx, s); err != nil {
			return len(series), err
		}
	}
	if err := sink.Tick(ctx, to.Add(24*time.Hour)); err != nil {
		return len(series), err
	}
	return len(series), nil
}

// Live scores each closed minute as it becomes final (now - window delay), for every key that has
// counts in it and every key the detector already knows (their silence is a zero).
type Live struct {
	Search      *search.Client
	Prefix      string
	Catalog     *catalog.Catalog
	Config      detect.Config
	WindowDelay time.Duration
	Sink        Sink
	Log         *slog.Logger
	Now         func() time.Time
	// Warmup is how much history is replayed into the models at start.
	Warmup time.Duration
	// Catchup is how many of the last minutes before start are scored (not just learned), so a
	// spike during a hub restart still alerts. Default 15 minutes.
	Catchup time.Duration
	// Tick is how often the loop looks for newly final minutes. Default 5 seconds.
	Tick time.Duration

	det   *detect.Detector
	known map[Key]bool
	next  time.Time
}

// Run scores minutes until ctx ends.
func (l *Live) Run(ctx context.Context) error {
	if l.Now == nil {
		l.Now = time.Now
	}
	if l.Warmup == 0 {
		l.Warmup = 24 * time.Hour
	}
	if l.Catchup == 0 {
		l.Catchup = 15 * time.Minute
	}
	if l.Tick == 0 {
		l.Tick = 5 * time.Second
	}
	l.det = detect.New(l.Config)
	l.known = map[Key]bool{}
	end := l.Now().Add(-l.WindowDelay).Truncate(time.Minute).Add(-l.Catchup)
	if err := l.warm(ctx, end.Add(-l.Warmup), end); err != nil && ctx.Err() == nil {
		l.Log.Warn("detector warm-up incomplete", "err", err)
	}
	l.next = end
	t := time.NewTicker(l.Tick)
	defer t.Stop()
	for {
		for !l.Now().Add(-l.WindowDelay).Before(l.next.Add(time.Minute)) {
			if err := l.Step(ctx, l.next); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				l.Log.Warn("detection step failed, retrying", "minute", l.next, "err", err)
				break
			}
			l.next = l.next.Add(time.Minute)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (l *Live) warm(ctx context.Context, from, to time.Time) error {
	series, err := Series(ctx, l.Search, l.Prefix, l.Catalog, from, to)
	if err != nil {
		return err
	}
	for k, pts := range series {
		l.known[k] = true
		for _, p := range pts {
			l.det.Update(k.String(), p.Time, p.Value)
		}
	}
	l.Log.Info("detector warmed up", "keys", len(series), "from", from, "to", to)
	return nil
}

// Step scores one minute.
func (l *Live) Step(ctx context.Context, minute time.Time) error {
	vals := map[Key]float64{}
	err := l.Search.Series(ctx, l.Prefix, minute, minute.Add(time.Minute), func(p search.SeriesPoint) error {
		if v, ok := value(l.Catalog, p); ok {
			vals[Key{p.API, p.AccountID, p.Entity}] += v
		}
		return nil
	})
	if err != nil {
		return err
	}
	for k := range vals {
		l.known[k] = true
	}
	l.Log.Debug("scoring minute", "minute", minute, "keys_with_counts", len(vals), "keys", len(l.known))
	for k := range l.known {
		r := l.det.Update(k.String(), minute, vals[k])
		if r.Grade <= 0 {
			continue
		}
		if err := l.Sink.Observe(ctx, alerts.Signal{Time: minute, AccountID: k.AccountID, API: k.API, Entity: k.Entity,
			Grade: r.Grade, Confidence: r.Confidence, Actual: r.Actual, Expected: r.Expected, Source: "builtin"}); err != nil {
			l.Log.Warn("alert", "err", err)
		}
	}
	return l.Sink.Tick(ctx, minute.Add(time.Minute))
}
