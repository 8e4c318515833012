// Package replay finds CloudTrail files under a path and counts them, one input unit per file, in
// parallel and in event-time order. `spikewatch count` and the agent's dir:// source share it.
package replay

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/spikewatch/spikewatch/internal/catalog"
	"github.com/spikewatch/spikewatch/internal/cloudtrail"
	"github.com/spikewatch/spikewatch/internal/counting"
	"github.com/spikewatch/spikewatch/internal/wire"
)

// File is one CloudTrail input file.
type File struct {
	Path string // as found
	Rel  string // relative to the root given
	Size int64
	// Stamp is the delivery time in the S3 file name (YYYYMMDDTHHMMZ), or "" when the name has none.
	Stamp string
}

// Unit is the deterministic id of the file as an input unit: a file replayed again yields the same
// unit, so its counts overwrite the same documents.
func (f File) Unit() string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d", filepath.ToSlash(f.Rel), f.Size)))
	return "f:" + hex.EncodeToString(h[:12])
}

var stampRE = regexp.MustCompile(`_(\d{8}T\d{4}Z)_`)

// List returns the files under the given paths (files or directory trees), ordered by the delivery
// time in their names, then by path. Hidden files and truth/manifest files of the generator are
// skipped.
func List(paths ...string) ([]File, error) {
	var out []File
	for _, root := range paths {
		info, err := os.Stat(root)
		if err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		if !info.IsDir() {
			out = append(out, newFile(root, filepath.Base(root), info.Size()))
			continue
		}
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := d.Name()
			if d.IsDir() {
				if strings.HasPrefix(name, ".") && p != root {
					return filepath.SkipDir
				}
				return nil
			}
			if strings.HasPrefix(name, ".") || !isCandidate(name) {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			out = append(out, newFile(p, rel, fi.Size()))
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("replay: walk %s: %w", root, err)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Stamp != out[j].Stamp {
			return out[i].Stamp < out[j].Stamp
		}
		return out[i].Rel < out[j].Rel
	})
	return out, nil
}

func newFile(p, rel string, size int64) File {
	f := File{Path: p, Rel: rel, Size: size}
	if m := stampRE.FindStringSubmatch(filepath.Base(p)); m != nil {
		f.Stamp = m[1]
	}
	return f
}

func isCandidate(name string) bool {
	n := strings.ToLower(name)
	if n == "truth.json" || strings.HasSuffix(n, ".md") || strings.HasSuffix(n, ".txt") || strings.HasSuffix(n, ".csv") {
		return false
	}
	for _, ext := range []string{".json", ".json.gz", ".gz", ".jsonl", ".ndjson", ".log"} {
		if strings.HasSuffix(n, ext) {
			return true
		}
	}
	return false
}

// Stats counts what a read saw.
type Stats struct {
	Files     int64
	Bytes     int64
	Events    int64
	Matched   int64
	Rejected  map[string]int64 // by reason (decode and counting reasons)
	ReadError int64
}

// Add adds another read's totals to s.
func (s *Stats) Add(o Stats) {
	s.Files += o.Files
	s.Bytes += o.Bytes
	s.Events += o.Events
	s.Matched += o.Matched
	s.ReadError += o.ReadError
	for k, v := range o.Rejected {
		if s.Rejected == nil {
			s.Rejected = map[string]int64{}
		}
		s.Rejected[k] += v
	}
}

// Clone returns a copy that shares nothing with s.
func (s Stats) Clone() Stats {
	c := s
	c.Rejected = make(map[string]int64, len(s.Rejected))
	for k, v := range s.Rejected {
		c.Rejected[k] = v
	}
	return c
}

// Result is the counts of one file.
type Result struct {
	File   File
	Counts []counting.Count
	Stats  Stats
	Err    error // reading the file failed (the counts are then partial and must not be sent)
}

// CountFile decodes and counts one file.
func CountFile(f File, cat *catalog.Catalog, opts counting.Options) Result {
	res := Result{File: f, Stats: Stats{Files: 1, Bytes: f.Size}}
	fh, err := os.Open(f.Path)
	if err != nil {
		res.Err = fmt.Errorf("open %s: %w", f.Path, err)
		res.Stats.ReadError++
		return res
	}
	defer fh.Close()
	c := counting.New(cat, opts)
	reject := func(r cloudtrail.Rejection) {
		if res.Stats.Rejected == nil {
			res.Stats.Rejected = map[string]int64{}
		}
		res.Stats.Rejected[string(r.Reason)]++
	}
	var skipped int64
	err = cloudtrail.Decode(fh, DecodeOptions(cat, &skipped), func(ev *cloudtrail.Event) error {
		res.Stats.Events++
		matched, reason := Add(c, cat, ev)
		if reason != "" {
			if res.Stats.Rejected == nil {
				res.Stats.Rejected = map[string]int64{}
			}
			res.Stats.Rejected[reason]++
		}
		if matched {
			res.Stats.Matched++
		}
		return nil
	}, reject)
	if err != nil {
		res.Err = fmt.Errorf("read %s: %w", f.Path, err)
		res.Stats.ReadError++
	}
	res.Stats.Events += skipped
	res.Counts = c.Drain()
	return res
}

// DecodeOptions makes the decoder skip, without decoding them, the plain CloudTrail records of
// APIs the catalog does not monitor (most of a trail); skipped counts them.
func DecodeOptions(cat *catalog.Catalog, skipped *int64) cloudtrail.Options {
	return cloudtrail.Options{
		Want: func(source, name string) bool {
			_, ok := cat.Lookup(source, name)
			return ok
		},
		Skipped: skipped,
	}
}

// ReasonBadRegion: a monitored event whose awsRegion is not a region name; counting it would make
// the hub refuse the whole batch.
const ReasonBadRegion = "bad_region"

// Add counts one event and returns whether it was a monitored API, or why it was not counted.
// Every path that counts events (files, streams) goes through it, so `spikewatch count` and the
// agent count exactly the same.
func Add(c *counting.Counter, cat *catalog.Catalog, ev *cloudtrail.Event) (matched bool, reason string) {
	if !wire.ValidRegion(ev.AWSRegion) {
		if _, ok := cat.Lookup(ev.EventSource, ev.EventName); ok {
			return false, ReasonBadRegion
		}
		return false, ""
	}
	matched, err := c.Add(ev)
	if err != nil {
		var re *counting.RejectError
		if errors.As(err, &re) {
			return false, string(re.Reason)
		}
		return false, "count_error"
	}
	return matched, ""
}

// Count counts files with workers in parallel and calls fn for each file's result in the files'
// order. It stops at the first error fn returns or when ctx ends.
func Count(parent context.Context, files []File, cat *catalog.Catalog, opts counting.Options, workers int, fn func(Result) error) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	type slot struct {
		ch chan Result
	}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	slots := make(chan slot, workers*2)
	var wg sync.WaitGroup
	sem := make(chan struct{}, workers)
	go func() {
		defer close(slots)
		for _, f := range files {
			s := slot{ch: make(chan Result, 1)}
			select {
			case slots <- s:
			case <-ctx.Done():
				return
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func(f File) {
				defer wg.Done()
				defer func() { <-sem }()
				s.ch <- CountFile(f, cat, opts)
			}(f)
		}
	}()
	var err error
	for s := range slots {
		var r Result
		select {
		case r = <-s.ch:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			break
		}
		if err = fn(r); err != nil {
			break
		}
	}
	cancel()
	for range slots {
	}
	wg.Wait()
	if err == nil {
		err = parent.Err()
	}
	return err
}

// Gunzip copies the decompressed bytes of a gzip file to w: the floor that parsing is measured
// against in benchmarks.
func Gunzip(path string, w io.Writer) (int64, error) {
	fh, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	zr, err := gzip.NewReader(fh)
	if err != nil {
		return 0, err
	}
	return io.Copy(w, zr)
}
