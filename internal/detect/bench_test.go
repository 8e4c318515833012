package detect

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkUpdate: one Model, a busy diurnal series with spikes, one Update per op.
func BenchmarkUpdate(b *testing.B) {
	for _, tc := range []struct {
		name string
		cfg  Config
		rate float64
	}{
		{"counts-20/min", Config{}, 20},
		{"counts-2000/min", Config{}, 2000},
		{"weekly-season", Config{Season: 7 * 24 * 60 * minuteDuration}, 20},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(5, 6))
			vals := make([]float64, 7*1440)
			for i := range vals {
				lam := tc.rate * diurnal(minute(i))
				if i%1000 < 20 {
					lam *= 10
				}
				vals[i] = poisson(r, lam)
			}
			m := NewModel(tc.cfg)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				m.Update(minute(i), vals[i%len(vals)])
			}
		})
	}
}

const minuteDuration = 60_000_000_000

// BenchmarkDetector100kEntities: a Detector holding 100,000 entities; one op is one Update of
// the next entity, round robin (minute by minute). Reports the live heap per entity, measured
// when the entities are created and updated for 3 minutes (excluding the caller's key strings).
func BenchmarkDetector100kEntities(b *testing.B) {
	const n = 100_000
	perEntity := detectorBytesPerEntity(n, 3)
	d := New(Config{})
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("acct-%06d|us-east-1|lambda:Invoke", i)
		d.Update(keys[i], minute(0), 1)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		d.Update(keys[i%n], minute(1+i/n), float64(i%5))
	}
	if d.Len() != n {
		b.Fatalf("Len %d", d.Len())
	}
	b.ReportMetric(perEntity, "B/entity") // after the loop: b.Loop resets user metrics
}
