package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/spikewatch/spikewatch/internal/catalog"
	"github.com/spikewatch/spikewatch/internal/cloudtrail"
	"github.com/spikewatch/spikewatch/internal/counting"
	"github.com/spikewatch/spikewatch/internal/replay"
)

// ParseSource turns --source (dir://PATH or stdin) into a Source.
func ParseSource(spec string, in io.Reader, agentID string, cat *catalog.Catalog, log *slog.Logger) (Source, error) {
	switch {
	case strings.HasPrefix(spec, "dir://"):
		p := strings.TrimPrefix(spec, "dir://")
		if p == "" {
			return nil, errors.New("source dir:// needs a path")
		}
		return &DirSource{Path: p, Catalog: cat, Log: log}, nil
	case spec == "stdin" || spec == "-":
		return &StreamSource{R: in, Name: "stdin:" + agentID, Catalog: cat, Log: log}, nil
	default:
		return nil, fmt.Errorf("unknown source %q (want dir://PATH or stdin)", spec)
	}
}

// DirSource replays a directory tree of CloudTrail files in event-time order, one unit per file.
type DirSource struct {
	Path    string
	Catalog *catalog.Catalog
	Log     *slog.Logger
	Workers int

	mu    sync.Mutex
	stats replay.Stats
}

// Stats returns what the source read so far.
func (s *DirSource) Stats() replay.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.Clone()
}

// Run implements Source.
func (s *DirSource) Run(ctx context.Context, skip func(string) bool, emit func(context.Context, string, []counting.Count) error) error {
	files, err := replay.List(s.Path)
	if err != nil {
		return err
	}
	var todo []replay.File
	for _, f := range files {
		if !skip(f.Unit()) {
			todo = append(todo, f)
		}
	}
	if s.Log != nil {
		s.Log.Info("replaying", "path", s.Path, "files", len(files), "already_acked", len(files)-len(todo))
	}
	last := time.Now()
	done := 0
	return replay.Count(ctx, todo, s.Catalog, counting.Options{}, s.Workers, func(r replay.Result) error {
		s.mu.Lock()
		s.stats.Add(r.Stats)
		s.mu.Unlock()
		done++
		if s.Log != nil && time.Since(last) > 2*time.Second {
			last = time.Now()
			s.Log.Info("replay progress", "files", done, "of", len(todo))
		}
		if r.Err != nil {
			// A file that cannot be read whole is not sent: its partial counts would be acked
			// and never completed. It is reported and counted instead.
			if s.Log != nil {
				s.Log.Error("file skipped", "file", r.File.Path, "err", r.Err)
			}
			return nil
		}
		return emit(ctx, r.File.Unit(), r.Counts)
	})
}

// StreamSource counts a stream of CloudTrail events (any shape Decode accepts) and emits a unit
// every FlushEvery, when MaxKeys keys are held, and at the end.
type StreamSource struct {
	R          io.Reader
	Name       string
	Catalog    *catalog.Catalog
	Log        *slog.Logger
	FlushEvery time.Duration
	MaxKeys    int

	smu   sync.Mutex
	stats replay.Stats
}

// Stats returns what the source read so far.
func (s *StreamSource) Stats() replay.Stats {
	s.smu.Lock()
	defer s.smu.Unlock()
	return s.stats.Clone()
}

func (s *StreamSource) count(matched bool, reason string) {
	s.smu.Lock()
	defer s.smu.Unlock()
	s.stats.Events++
	if matched {
		s.stats.Matched++
	}
	if reason != "" {
		if s.stats.Rejected == nil {
			s.stats.Rejected = map[string]int64{}
		}
		s.stats.Rejected[reason]++
	}
}

// Run implements Source.
func (s *StreamSource) Run(ctx context.Context, _ func(string) bool, emit func(context.Context, string, []counting.Count) error) error {
	if s.FlushEvery <= 0 {
		s.FlushEvery = 10 * time.Second
	}
	if s.MaxKeys <= 0 {
		s.MaxKeys = 100_000
	}
	boot := time.Now().UnixNano()
	var mu sync.Mutex
	c := counting.New(s.Catalog, counting.Options{})
	n := 0
	flush := func(ctx context.Context) error {
		mu.Lock()
		counts := c.Drain()
		n++
		unit := fmt.Sprintf("%s:%d:%d", s.Name, boot, n)
		mu.Unlock()
		if len(counts) == 0 {
			return nil
		}
		return emit(ctx, unit, counts)
	}
	errc := make(chan error, 1)
	go func() {
		errc <- cloudtrail.Decode(s.R, replay.DecodeOptions(s.Catalog, nil), func(ev *cloudtrail.Event) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			mu.Lock()
			matched, reason := replay.Add(c, s.Catalog, ev)
			full := c.Len() >= s.MaxKeys
			mu.Unlock()
			s.count(matched, reason)
			if reason != "" && s.Log != nil {
				s.Log.Debug("event not counted", "reason", reason)
			}
			if full {
				return flush(ctx)
			}
			return nil
		}, func(r cloudtrail.Rejection) {
			s.count(false, string(r.Reason))
			if s.Log != nil {
				s.Log.Debug("event rejected", "reason", r.Reason, "detail", r.Detail)
			}
		})
	}()
	t := time.NewTicker(s.FlushEvery)
	defer t.Stop()
	for {
		select {
		case err := <-errc:
			if ferr := flush(ctx); ferr != nil {
				return ferr
			}
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		case <-t.C:
			if err := flush(ctx); err != nil {
				return err
			}
		case <-ctx.Done():
			// Keep what was counted: it goes to the spool before the agent stops.
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = flush(fctx)
			cancel()
			return ctx.Err()
		}
	}
}
