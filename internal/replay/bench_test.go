package replay_test

import (
	"context"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/spikewatch/spikewatch/internal/catalog"
	"github.com/spikewatch/spikewatch/internal/counting"
	"github.com/spikewatch/spikewatch/internal/replay"
	"github.com/spikewatch/spikewatch/internal/workload"
)

var (
	benchOnce  sync.Once
	benchFiles []replay.File
	benchErr   error
)

// benchData is a generated organization (gzip'd S3-layout files), written once per test binary.
func benchData(b *testing.B) []replay.File {
	b.Helper()
	benchOnce.Do(func() {
		dir, err := os.MkdirTemp("", "spikewatch-bench-")
		if err != nil {
			benchErr = err
			return
		}
		if _, benchErr = workload.Generate(context.Background(), workload.Config{Seed: 3, Accounts: 6, Duration: 24 * time.Hour}, dir, nil); benchErr != nil {
			return
		}
		benchFiles, benchErr = replay.List(dir)
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchFiles
}

func totalSize(files []replay.File) int64 {
	var n int64
	for _, f := range files {
		n += f.Size
	}
	return n
}

// BenchmarkCount is `spikewatch count` on gzip'd CloudTrail: decode, match, count, per file in
// parallel. MB/s is of compressed input; events/s is reported too.
func BenchmarkCount(b *testing.B) {
	files := benchData(b)
	cat := catalog.Default()
	for _, workers := range []int{1, 2} {
		b.Run(map[int]string{1: "cores=1", 2: "cores=2"}[workers], func(b *testing.B) {
			b.SetBytes(totalSize(files))
			var events int64
			for i := 0; i < b.N; i++ {
				events = 0
				err := replay.Count(context.Background(), files, cat, counting.Options{}, workers, func(r replay.Result) error {
					events += r.Stats.Events
					return r.Err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkGunzip is the floor: only decompressing the same files, on one core.
func BenchmarkGunzip(b *testing.B) {
	files := benchData(b)
	b.SetBytes(totalSize(files))
	for i := 0; i < b.N; i++ {
		for _, f := range files {
			if _, err := replay.Gunzip(f.Path, io.Discard); err != nil {
				b.Fatal(err)
			}
		}
	}
}
