package detect

import (
	"encoding/binary"
	"math"
	"testing"
	"time"
)

// FuzzUpdate feeds arbitrary values (NaN, ±Inf, negative, huge, non-integer) at arbitrary time
// steps (repeats, steps back, jumps of up to centuries) to a Model and a Detector: no panic, and
// every result has grade and confidence in [0,1] and finite, non-negative numbers.
//
// The input is a config byte followed by up to 500 10-byte records: an int16 step in half
// intervals (scaled up by 2^20 when its low three bits are set, for long jumps) and a float64
// value (raw bits). MaxImpute is kept small so that long jumps stay cheap.
func FuzzUpdate(f *testing.F) {
	rec := func(step int16, v float64) []byte {
		b := make([]byte, 10)
		binary.LittleEndian.PutUint16(b, uint16(step))
		binary.LittleEndian.PutUint64(b[2:], math.Float64bits(v))
		return b
	}
	seed := []byte{0}
	for i := range 60 {
		seed = append(seed, rec(2, float64(i%7))...)
	}
	for _, v := range []float64{480, math.NaN(), math.Inf(1), -5, 1e300, 0.5, math.Inf(-1), 3} {
		seed = append(seed, rec(2, v)...)
	}
	seed = append(seed, rec(0, 9)...)
	seed = append(seed, rec(-8, 9)...)
	seed = append(seed, rec(32767, 9)...)
	seed = append(seed, rec(-32761, 9)...)
	f.Add(seed)
	f.Add([]byte{3, 1, 2})
	f.Add(append([]byte{0x45}, rec(1, math.Float64frombits(0x7ff8000000000001))...))

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		c := data[0]
		cfg := Config{
			ShingleSize: int(c%4) * 5,    // 0 (default 8), 5, 10, 15
			MinHistory:  int(c>>2%4) * 3, // 0 (default), 3, 6, 9
			Interval:    time.Duration(c>>4%3+1) * time.Minute,
			MaxImpute:   100,
		}
		if c&0x40 != 0 {
			cfg.Season = 7 * 24 * time.Hour
		}
		if c&0x80 != 0 {
			cfg.MinExcess, cfg.MinRatio = -1, -1
		}
		m := NewModel(cfg)
		d := New(Config{MaxEntities: 2, MaxImpute: 50})
		keys := []string{"a", "b", "c"}
		tm := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		iv := newParams(cfg).cfg.Interval
		for i, b := 0, data[1:]; len(b) >= 10 && i < 500; i, b = i+1, b[10:] {
			step := int64(int16(binary.LittleEndian.Uint16(b)))
			if step&7 == 7 {
				step <<= 20
			}
			tm = tm.Add(time.Duration(step) * iv / 2)
			v := math.Float64frombits(binary.LittleEndian.Uint64(b[2:]))
			check(t, m.Update(tm, v))
			check(t, d.Update(keys[i%3], tm, v))
		}
	})
}

func check(t *testing.T, r Result) {
	t.Helper()
	ok := func(x float64) bool { return x >= 0 && !math.IsInf(x, 0) }
	if !(r.Grade >= 0 && r.Grade <= 1) || !(r.Confidence >= 0 && r.Confidence <= 1) ||
		!ok(r.Actual) || !ok(r.Expected) || !ok(r.Score) || !ok(r.WindowActual) ||
		!ok(r.WindowExpected) || r.Window < 0 {
		t.Fatalf("bad result %+v", r)
	}
}
