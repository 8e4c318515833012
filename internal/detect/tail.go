package detect

import "math"

// Tail probabilities, in natural-log space so that extreme spikes keep a finite, ordered score.

const (
	ln10       = math.Ln10
	halfLn2Pi  = 0.91893853320467274178 // ln(2π)/2
	seriesMaxA = 100                    // above this shape, logPoissonTail uses Wilson–Hilferty
)

// logNormalTail returns ln P(Z > z) for a standard normal Z.
func logNormalTail(z float64) float64 {
	if z < 30 {
		return math.Log(0.5 * math.Erfc(z/math.Sqrt2))
	}
	// Asymptotic expansion of the Mills ratio; erfc underflows past z ≈ 38.
	z2 := z * z
	return -z2/2 - math.Log(z) - halfLn2Pi + math.Log(1-1/z2+3/(z2*z2))
}

// logPoissonTail returns ln P(X >= s) for X ~ Poisson(lambda), continued to real s through the
// identity P(X >= s) = P(Gamma(s, 1) <= lambda), the regularized lower incomplete gamma function.
// It is meant for the upper tail (s > lambda > 0); it returns 0 (probability 1) for s <= 0.
func logPoissonTail(s, lambda float64) float64 {
	switch {
	case s <= 0:
		return 0
	case lambda <= 0:
		return math.Inf(-1)
	case s > seriesMaxA:
		// Wilson–Hilferty: (G/s)^(1/3) is close to normal with mean 1-1/(9s), variance 1/(9s).
		z := (1 - 1/(9*s) - math.Cbrt(lambda/s)) * 3 * math.Sqrt(s)
		return logNormalTail(z)
	}
	// Series for the lower incomplete gamma (Numerical Recipes gser), converging for lambda < s+1.
	term := 1 / s
	sum := term
	for n := 1; n < 1000; n++ {
		term *= lambda / (s + float64(n))
		sum += term
		if term < sum*1e-12 {
			break
		}
	}
	lg, _ := math.Lgamma(s)
	v := -lambda + s*math.Log(lambda) - lg + math.Log(sum)
	return math.Min(v, 0)
}
