package counting

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/spikewatch/spikewatch/internal/cloudtrail"
)

// benchEvents returns realistic events of the three default APIs, spread over a few keys.
func benchEvents() []*cloudtrail.Event {
	var evs []*cloudtrail.Event
	for i := range 300 {
		var ev *cloudtrail.Event
		switch i % 3 {
		case 0:
			ev = event(runInstances, `{"instancesSet":{"items":[{"imageId":"ami-0abcdef1234567890","minCount":1,"maxCount":4}]},`+
				`"instanceType":"g5.12xlarge","blockDeviceMapping":{},"monitoring":{"enabled":false},"disableApiTermination":false,`+
				`"disableApiStop":false,"clientToken":"`+fmt.Sprint(i)+`","tagSpecificationSet":{"items":[{"resourceType":"instance",`+
				`"tags":[{"key":"Name","value":"worker"},{"key":"team","value":"ml"}]}]},"userData":"<sensitiveDataRemoved>"}`)
		case 1:
			ev = event(createVolume, `{"size":500,"volumeType":"gp3","availabilityZone":"us-east-1a","encrypted":true,"iops":3000,"throughput":125,"clientToken":"x"}`)
		default:
			ev = event(invoke, fmt.Sprintf(`{"functionName":"arn:aws:lambda:us-east-1:111122223333:function:fn-%d","invocationType":"Event","logType":"None"}`, i%7))
		}
		ev.RecipientAccountID = fmt.Sprintf("%012d", i%5)
		ev.UserIdentity.ARN = fmt.Sprintf("arn:aws:iam::111122223333:role/app-%d", i%4)
		ev.EventTime = t0.Add(time.Duration(i%120) * time.Second)
		evs = append(evs, ev)
	}
	return evs
}

func BenchmarkAdd(b *testing.B) {
	evs := benchEvents()
	c := New(nil, Options{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := c.Add(evs[i%len(evs)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkMemory100kKeys measures the heap a Counter holds per key, with 100,000 keys of the three
// default APIs (distinct accounts and functions), each with a principal, source IP, user agent and
// for RunInstances an instance type.
func BenchmarkMemory100kKeys(b *testing.B) {
	const keys = 100_000
	evs := make([]*cloudtrail.Event, keys)
	for i := range evs {
		var ev *cloudtrail.Event
		switch i % 3 {
		case 0:
			ev = event(runInstances, `{"instanceType":"m5.large","instancesSet":{"items":[{"maxCount":1}]}}`)
		case 1:
			ev = event(createVolume, `{"size":8,"volumeType":"gp3"}`)
		default:
			ev = event(invoke, fmt.Sprintf(`{"functionName":"fn-%d"}`, i))
		}
		ev.RecipientAccountID = fmt.Sprintf("%012d", i)
		evs[i] = ev
	}
	var bytesPerKey float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := New(nil, Options{})
		for _, ev := range evs {
			if _, err := c.Add(ev); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if c.Len() != keys {
			b.Fatalf("%d keys", c.Len())
		}
		bytesPerKey = float64(after.HeapAlloc-before.HeapAlloc) / keys
		runtime.KeepAlive(c)
	}
	b.ReportMetric(bytesPerKey, "B/key")
}
