package agent

import (
	"os"
	"path/filepath"
	"testing"

	pb "github.com/spikewatch/spikewatch/internal/gen/spikewatch/v1"
)

func TestSpoolKeepsUntilSettled(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"f:a", "f:b", "f:c"} {
		if err := s.Put(&pb.CountBatch{UnitId: u, Seq: 99, Counts: []*pb.Count{{AccountId: "123456789012", Calls: 1}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Settle("f:b"); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// A restart sees what was not settled, and knows what was.
	s2, err := OpenSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	pending, errs := s2.Pending()
	if len(errs) != 0 || len(pending) != 2 {
		t.Fatalf("pending %d, errs %v", len(pending), errs)
	}
	units := map[string]bool{}
	for _, b := range pending {
		units[b.UnitId] = true
		if b.Seq != 0 {
			t.Error("a spooled batch must not keep its stream sequence")
		}
		if len(b.Counts) != 1 {
			t.Error("counts lost in the spool")
		}
	}
	if !units["f:a"] || !units["f:c"] || units["f:b"] {
		t.Fatalf("pending units %v", units)
	}
	if !s2.Acked("f:b") || s2.Acked("f:a") {
		t.Fatal("acked units not remembered")
	}
}

func TestSpoolMovesCorruptBatchesAside(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(&pb.CountBatch{UnitId: "ok"}); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "pending", "garbage.batch")
	if err := os.WriteFile(bad, []byte{0xff, 0xff, 0xff}, 0o640); err != nil {
		t.Fatal(err)
	}
	pending, errs := s.Pending()
	if len(pending) != 1 || len(errs) != 1 {
		t.Fatalf("pending %d errs %v", len(pending), errs)
	}
	if _, err := os.Stat(bad + ".corrupt"); err != nil {
		t.Fatalf("corrupt batch not moved aside: %v", err)
	}
}

func TestNilSpoolKeepsNothing(t *testing.T) {
	var s *Spool
	if err := s.Put(&pb.CountBatch{UnitId: "x"}); err != nil || s.Acked("x") {
		t.Fatal("nil spool")
	}
	if p, e := s.Pending(); p != nil || e != nil {
		t.Fatal("nil spool pending")
	}
}
