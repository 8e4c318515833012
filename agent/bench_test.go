package agent

import (
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/spikewatch/spikewatch/internal/catalog"
	"github.com/spikewatch/spikewatch/internal/cloudtrail"
	"github.com/spikewatch/spikewatch/internal/counting"
	"github.com/spikewatch/spikewatch/internal/wire"
)

// BenchmarkAgentMemory100kKeys measures what an agent holds for 100,000 distinct keys: the counter
// while counting, then the same counts as wire batches waiting for acks.
func BenchmarkAgentMemory100kKeys(b *testing.B) {
	cat := catalog.Default()
	const keys = 100_000
	params := json.RawMessage(`{"functionName":"fn"}`)
	events := make([]cloudtrail.Event, keys)
	base := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	for i := range events {
		events[i] = cloudtrail.Event{
			EventTime: base.Add(time.Duration(i%1440) * time.Minute), EventSource: "lambda.amazonaws.com", EventName: "Invoke",
			AWSRegion: "us-east-1", RecipientAccountID: fmt.Sprintf("%012d", 100000000000+i/1440),
			SourceIPAddress: "10.0.0.1", UserAgent: "aws-sdk-go-v2", RequestParameters: params,
			UserIdentity: cloudtrail.UserIdentity{ARN: "arn:aws:iam::123456789012:role/app"},
		}
	}
	var counterB, batchB float64
	for i := 0; i < b.N; i++ {
		before := heap()
		c := counting.New(cat, counting.Options{})
		for j := range events {
			if _, err := c.Add(&events[j]); err != nil {
				b.Fatal(err)
			}
		}
		if c.Len() != keys {
			b.Fatalf("%d keys", c.Len())
		}
		withCounter := heap()
		counts := c.Drain()
		pbs := wire.ToProto(counts)
		runtime.KeepAlive(c)
		counts = nil
		withBatches := heap()
		counterB = float64(withCounter-before) / keys
		batchB = float64(withBatches-before) / keys
		runtime.KeepAlive(pbs)
	}
	b.ReportMetric(counterB, "counterB/key")
	b.ReportMetric(batchB, "batchB/key")
	b.ReportMetric(batchB*keys/(1<<20), "batchMiB/100k")
}

func heap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
