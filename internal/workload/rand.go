package workload

import (
	"encoding/hex"
	"math"
	"math/rand/v2"
)

// Every random choice comes from a PCG stream keyed by the seed and by what it is for (the org, one
// account-region-window, one incident...). Streams never share state, so adding an incident or
// shortening the run leaves every other event unchanged, and work can run in parallel.

// Stream purposes.
const (
	streamOrg uint64 = iota + 1
	streamBackground
	streamIncident
	streamFileName
)

func mix(x uint64) uint64 { // splitmix64 finalizer
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func newRand(seed int64, purpose uint64, parts ...uint64) *rand.Rand {
	h := mix(uint64(seed) ^ mix(purpose))
	for _, p := range parts {
		h = mix(h ^ p)
	}
	return rand.New(rand.NewPCG(h, mix(h^0x6a09e667f3bcc909)))
}

// poisson draws a Poisson count with mean lambda (normal approximation above 30).
func poisson(r *rand.Rand, lambda float64) int {
	switch {
	case lambda <= 0:
		return 0
	case lambda < 30:
		l, p, k := math.Exp(-lambda), r.Float64(), 0
		for p > l {
			p *= r.Float64()
			k++
		}
		return k
	default:
		return max(0, int(math.Round(lambda+math.Sqrt(lambda)*r.NormFloat64())))
	}
}

// lognormal returns a multiplier with median 1.
func lognormal(r *rand.Rand, sigma float64) float64 { return math.Exp(sigma * r.NormFloat64()) }

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// weighted returns an index drawn with the given weights.
func weighted(r *rand.Rand, w []float64) int {
	var sum float64
	for _, x := range w {
		sum += x
	}
	u := r.Float64() * sum
	for i, x := range w {
		if u < x {
			return i
		}
		u -= x
	}
	return len(w) - 1
}

func uuid(r *rand.Rand) string {
	var b [16]byte
	a, c := r.Uint64(), r.Uint64()
	for i := range 8 {
		b[i], b[8+i] = byte(a>>(8*i)), byte(c>>(8*i))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

const (
	alnum   = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	upperID = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" // AWS key ids: base32 alphabet
	hexLow  = "0123456789abcdef"
)

func randString(r *rand.Rand, alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// hashString derives a stable pseudo-random string from a key (for ids that must stay the same
// within an hour or a session without carrying state across windows).
func hashString(alphabet string, n int, key ...string) string {
	h := uint64(14695981039346656037)
	for _, k := range key {
		for i := 0; i < len(k); i++ {
			h = (h ^ uint64(k[i])) * 1099511628211
		}
		h = mix(h)
	}
	b := make([]byte, n)
	for i := range b {
		if i%8 == 0 {
			h = mix(h)
		}
		b[i] = alphabet[(h>>(8*(i%8)))%uint64(len(alphabet))]
	}
	return string(b)
}
