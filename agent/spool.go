package agent

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"

	pb "github.com/spikewatch/spikewatch/internal/gen/spikewatch/v1"
)

// Spool keeps every batch that the hub has not acknowledged on disk, so a restarted agent sends
// them again, and remembers the units already acknowledged, so a replayed source skips them.
// A batch file is written to a temporary name, synced and renamed: after a crash a batch is either
// whole or absent. A nil *Spool keeps nothing (no --spool).
type Spool struct {
	dir   string
	mu    sync.Mutex
	acked map[string]bool
	log   *os.File
}

// OpenSpool opens (creating) a spool directory.
func OpenSpool(dir string) (*Spool, error) {
	if err := os.MkdirAll(filepath.Join(dir, "pending"), 0o750); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Spool{dir: dir, acked: map[string]bool{}}
	if f, err := os.Open(filepath.Join(dir, "acked.log")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if u := strings.TrimSpace(sc.Text()); u != "" {
				s.acked[u] = true
			}
		}
		f.Close()
	}
	f, err := os.OpenFile(filepath.Join(dir, "acked.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s.log = f
	return s, nil
}

// Close closes the spool.
func (s *Spool) Close() error {
	if s == nil {
		return nil
	}
	return s.log.Close()
}

func (s *Spool) path(unit string) string {
	h := sha256.Sum256([]byte(unit))
	return filepath.Join(s.dir, "pending", hex.EncodeToString(h[:16])+".batch")
}

// Put stores a batch until Settle.
func (s *Spool) Put(b *pb.CountBatch) error {
	if s == nil {
		return nil
	}
	data, err := proto.Marshal(&pb.CountBatch{UnitId: b.UnitId, Counts: b.Counts})
	if err != nil {
		return fmt.Errorf("spool: encode: %w", err)
	}
	p := s.path(b.UnitId)
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("spool: write: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("spool: sync: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

// Settle forgets a batch the hub acknowledged and remembers its unit.
func (s *Spool) Settle(unit string) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.acked[unit] {
		if _, err := s.log.WriteString(unit + "\n"); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		s.acked[unit] = true
	}
	if err := os.Remove(s.path(unit)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

// Acked reports whether every part of a unit was acknowledged earlier.
func (s *Spool) Acked(unit string) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked[unit]
}

// Pending returns the batches left from an earlier run, in a stable order. Files that cannot be
// decoded (a torn write cannot produce one, but a disk can) are moved aside and reported.
func (s *Spool) Pending() ([]*pb.CountBatch, []error) {
	if s == nil {
		return nil, nil
	}
	matches, _ := filepath.Glob(filepath.Join(s.dir, "pending", "*.batch"))
	sort.Strings(matches)
	var out []*pb.CountBatch
	var errs []error
	for _, m := range matches {
		data, err := os.ReadFile(m)
		if err == nil {
			var b pb.CountBatch
			if err = proto.Unmarshal(data, &b); err == nil && b.UnitId != "" {
				out = append(out, &b)
				continue
			}
			if err == nil {
				err = errors.New("no unit id")
			}
		}
		errs = append(errs, fmt.Errorf("spool: %s: %w (moved to %s.corrupt)", m, err, m))
		_ = os.Rename(m, m+".corrupt")
	}
	return out, errs
}
