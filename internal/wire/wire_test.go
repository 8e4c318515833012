package wire

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spikewatch/spikewatch/internal/catalog"
	"github.com/spikewatch/spikewatch/internal/counting"
	pb "github.com/spikewatch/spikewatch/internal/gen/spikewatch/v1"
)

var minute = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

func allowAll(string) bool { return true }

func TestRoundTripKeepsEveryField(t *testing.T) {
	in := []counting.Count{{
		Key:   counting.Key{Minute: minute, AccountID: "123456789012", Region: "eu-west-1", API: "ec2:RunInstances"},
		Calls: 4, Units: 9, Errors: 1,
		Principals: []counting.TopValue{{Value: "arn:aws:iam::123456789012:user/a", Count: 4}},
		SourceIPs:  []counting.TopValue{{Value: "203.0.113.1", Count: 4}},
		UserAgents: []counting.TopValue{{Value: "aws-cli", Count: 4}},
		ErrorCodes: []counting.TopValue{{Value: "Client.VcpuLimitExceeded", Count: 1}},
		Extra:      map[string][]counting.TopValue{"instance_types": {{Value: "p3.2xlarge", Count: 3}}},
	}}
	docs, err := ToDocs(&pb.CountBatch{UnitId: "u1", Counts: ToProto(in)}, catalog.Default(), allowAll, "agent-1")
	if err != nil {
		t.Fatal(err)
	}
	d := docs[0]
	if !d.Timestamp.Equal(minute) || d.AccountID != "123456789012" || d.Calls != 4 || d.Units != 9 || d.Errors != 1 ||
		d.Principals[0].Value != "arn:aws:iam::123456789012:user/a" || d.Extra["instance_types"][0].Value != "p3.2xlarge" ||
		d.Unit != "u1" || d.Agent != "agent-1" || d.ID == "" {
		t.Fatalf("doc %+v", d)
	}
	again, _ := ToDocs(&pb.CountBatch{UnitId: "u1", Counts: ToProto(in)}, catalog.Default(), allowAll, "agent-2")
	if again[0].ID != d.ID {
		t.Error("the same unit and key must give the same document id")
	}
	other, _ := ToDocs(&pb.CountBatch{UnitId: "u2", Counts: ToProto(in)}, catalog.Default(), allowAll, "agent-1")
	if other[0].ID == d.ID {
		t.Error("another unit must give another document id")
	}
}

func TestForbiddenAccount(t *testing.T) {
	b := &pb.CountBatch{UnitId: "u", Counts: []*pb.Count{{Minute: timestamppb.New(minute), AccountId: "222222222222", Region: "us-east-1", Api: "lambda:Invoke", Calls: 1}}}
	_, err := ToDocs(b, catalog.Default(), func(a string) bool { return a == "111111111111" }, "x")
	if !errors.Is(err, ErrForbidden) {
		t.Fatalf("err = %v, want ErrForbidden", err)
	}
}

// FuzzToDocs: arbitrary bytes as a batch on the wire never panic the hub, and whatever is accepted
// is well formed.
func FuzzToDocs(f *testing.F) {
	good, _ := proto.Marshal(&pb.CountBatch{Seq: 1, UnitId: "u", Counts: []*pb.Count{{Minute: timestamppb.New(minute), AccountId: "123456789012", Region: "us-east-1", Api: "lambda:Invoke", Entity: "fn", Calls: 3, Units: 3}}})
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	cat := catalog.Default()
	f.Fuzz(func(t *testing.T, data []byte) {
		var b pb.CountBatch
		if proto.Unmarshal(data, &b) != nil {
			return
		}
		docs, err := ToDocs(&b, cat, allowAll, "fuzz")
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		for _, d := range docs {
			if d.Calls <= 0 || d.Units < 0 || d.Errors > d.Calls || len(d.AccountID) != 12 || d.ID == "" {
				t.Fatalf("accepted a bad count: %+v", d)
			}
		}
	})
}
