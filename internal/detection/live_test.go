package detection_test

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/spikewatch/spikewatch/internal/alerts"
	"github.com/spikewatch/spikewatch/internal/catalog"
	"github.com/spikewatch/spikewatch/internal/detect"
	"github.com/spikewatch/spikewatch/internal/detection"
	"github.com/spikewatch/spikewatch/internal/ostest"
	"github.com/spikewatch/spikewatch/internal/search"
)

type firstSignal struct {
	mu   sync.Mutex
	at   time.Time
	sig  alerts.Signal
	seen chan struct{}
}

func (f *firstSignal) Observe(_ context.Context, s alerts.Signal) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.at.IsZero() && s.Grade >= 0.7 {
		f.at, f.sig = time.Now(), s
		close(f.seen)
	}
	return nil
}

func (f *firstSignal) Tick(context.Context, time.Time) error { return nil }

// The live path: a day of history, then a spike in the current minute. The spike is scored as soon
// as its minute is final (window delay 0 here; the hub's default adds 3 minutes for delivery),
// and the test reports the time from its last count being indexed to the signal.
func TestLiveSignalsASpikeWhenItsMinuteCloses(t *testing.T) {
	e := ostest.New(t)
	ctx := ostest.Context(t, 100*time.Second)
	sc := e.Client
	if err := sc.EnsureCountsTemplate(ctx, e.Prefix); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	cur := now.Truncate(time.Minute)
	rng := rand.New(rand.NewPCG(5, 6))
	var docs []search.CountDoc
	add := func(m time.Time, calls int64) {
		if calls == 0 {
			return
		}
		docs = append(docs, search.CountDoc{ID: search.CountDocID("live-test", m, "111111111111", "us-east-1", "lambda:Invoke", "fn"),
			Timestamp: m, AccountID: "111111111111", Region: "us-east-1", API: "lambda:Invoke", Entity: "fn", Calls: calls, Units: calls, Unit: "live-test"})
	}
	for m := cur.Add(-26 * time.Hour); m.Before(cur); m = m.Add(time.Minute) {
		add(m, int64(3+rng.IntN(5)))
	}
	for i := 0; i < len(docs); i += 2000 {
		if err := sc.IndexCounts(ctx, e.Prefix, docs[i:min(i+2000, len(docs))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := sc.Refresh(ctx, e.Prefix+"-counts-*"); err != nil {
		t.Fatal(err)
	}
	sink := &firstSignal{seen: make(chan struct{})}
	live := &detection.Live{Search: sc, Prefix: e.Prefix, Catalog: catalog.Default(), Config: detect.Config{}, Sink: sink,
		Log: testLogger(), Tick: time.Second, Catchup: 2 * time.Minute}
	go func() { _ = live.Run(ctx) }()
	// The spike: 600 calls in the current minute, indexed now.
	docs = docs[:0]
	add(cur, 600)
	if err := sc.IndexCounts(ctx, e.Prefix, docs); err != nil {
		t.Fatal(err)
	}
	indexed := time.Now()
	select {
	case <-sink.seen:
	case <-ctx.Done():
		t.Fatal("no signal for the spike")
	}
	if !sink.sig.Time.Equal(cur) || sink.sig.AccountID != "111111111111" || sink.sig.Entity != "fn" {
		t.Fatalf("signal %+v, want minute %s", sink.sig, cur)
	}
	closes := cur.Add(time.Minute)
	t.Logf("spike indexed %s before its minute closed; signal %s after the minute closed (%s after indexing); grade %.2f confidence %.2f, expected %.1f saw %.0f",
		closes.Sub(indexed).Round(time.Millisecond), sink.at.Sub(closes).Round(time.Millisecond), sink.at.Sub(indexed).Round(time.Millisecond),
		sink.sig.Grade, sink.sig.Confidence, sink.sig.Expected, sink.sig.Actual)
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
