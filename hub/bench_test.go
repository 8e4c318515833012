package hub_test

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/spikewatch/spikewatch/internal/gen/spikewatch/v1"
	"github.com/spikewatch/spikewatch/internal/ostest"
)

// BenchmarkHubIngest measures count rows per second from one agent stream through the hub into
// the local OpenSearch (batches of 2,000 counts, each acknowledged only after every item is indexed).
func BenchmarkHubIngest(b *testing.B) {
	e := ostest.New(b)
	h := startHub(b, e, hubOpts{})
	ctx := ostest.Context(b, 10*time.Minute)
	s := openStream(ctx, b, h.GRPCAddr(), token)
	base := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	const per = 2000
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		batch := &pb.CountBatch{Seq: uint64(i + 1), UnitId: fmt.Sprintf("bench-%d", i)}
		for j := 0; j < per; j++ {
			batch.Counts = append(batch.Counts, &pb.Count{
				Minute: timestamppb.New(base.Add(time.Duration(j%1440) * time.Minute)), AccountId: fmt.Sprintf("%012d", 100000000000+j/1440),
				Region: "us-east-1", Api: "lambda:Invoke", Entity: fmt.Sprintf("fn-%d", i%7), Calls: 5, Units: 5,
				Principals: []*pb.TopValue{{Value: "arn:aws:iam::123456789012:role/app", Count: 5}},
			})
		}
		if err := s.Send(&pb.StreamRequest{Msg: &pb.StreamRequest_Batch{Batch: batch}}); err != nil {
			b.Fatal(err)
		}
		for {
			r, err := s.Recv()
			if err != nil {
				b.Fatal(err)
			}
			if a := r.GetAck(); a != nil {
				if a.Status != pb.AckStatus_ACK_STATUS_ACCEPTED {
					b.Fatalf("ack %v %s", a.Status, a.Error)
				}
				break
			}
		}
	}
	b.ReportMetric(float64(b.N*per)/b.Elapsed().Seconds(), "rows/s")
}
