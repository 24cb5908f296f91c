package scheduler

import "math"

// The Beta distribution's CDF and quantile, standing in for scipy.stats.beta.ppf in the beta schedules
// (diffusers _convert_to_beta, ComfyUI beta_scheduler). float64, accurate to ~1e-15 for the shape
// parameters schedules use (checked against mpmath in betainc_test.go).

const (
	betaCFMaxIter = 10000
	betaCFEps     = 1e-16
	betaCFTiny    = 1e-300
	betaPPFIter   = 200
)

// lnBeta is log B(a, b) = lgamma(a) + lgamma(b) − lgamma(a+b) for a, b > 0.
func lnBeta(a, b float64) float64 {
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	return la + lb - lab
}

// regIncBeta is the regularized incomplete beta function I_x(a, b) (the Beta(a, b) CDF) for a, b > 0:
// the continued fraction of Numerical Recipes §6.4 evaluated by the modified Lentz method, on the side of
// the mean where it converges fast, using I_x(a, b) = 1 − I_{1−x}(b, a) on the other side.
func regIncBeta(a, b, x float64) float64 {
	switch {
	case math.IsNaN(x) || !(a > 0) || !(b > 0):
		return math.NaN()
	case x <= 0:
		return 0
	case x >= 1:
		return 1
	}
	if x > (a+1)/(a+b+2) {
		return 1 - regIncBetaLower(b, a, 1-x, x)
	}
	return regIncBetaLower(a, b, x, 1-x)
}

// regIncBetaLower is I_x(a, b) by the continued fraction, for x below the mean; y = 1 − x is passed in
// exactly by the caller.
func regIncBetaLower(a, b, x, y float64) float64 {
	front := math.Exp(float64(a*math.Log(x)) + float64(b*math.Log(y)) - lnBeta(a, b))
	return front * betaContinuedFraction(a, b, x) / a
}

// betaContinuedFraction evaluates the continued fraction for I_x(a, b) (NR betacf).
func betaContinuedFraction(a, b, x float64) float64 {
	qab, qap, qam := a+b, a+1, a-1
	c := 1.0
	d := 1 - float64(qab*x)/qap
	d = 1 / lentzGuard(d)
	h := d
	for m := 1; m <= betaCFMaxIter; m++ {
		fm := float64(m)
		m2 := 2 * fm
		aa := fm * (b - fm) * x / ((qam + m2) * (a + m2))
		d = 1 / lentzGuard(1+float64(aa*d))
		c = lentzGuard(1 + aa/c)
		h *= d * c
		aa = -(a + fm) * (qab + fm) * x / ((a + m2) * (qap + m2))
		d = 1 / lentzGuard(1+float64(aa*d))
		c = lentzGuard(1 + aa/c)
		del := d * c
		h *= del
		if math.Abs(del-1) < betaCFEps {
			break
		}
	}
	return h
}

// lentzGuard keeps the Lentz recurrences away from a zero divisor.
func lentzGuard(v float64) float64 {
	if math.Abs(v) < betaCFTiny {
		return betaCFTiny
	}
	return v
}

// betaPPF is the Beta(a, b) quantile: the x in [0, 1] with I_x(a, b) = p (scipy.stats.beta.ppf). p ≤ 0
// gives 0, p ≥ 1 gives 1. Above the median it solves the mirrored problem 1 − x = ppf(1 − p; b, a) so
// that quantiles near 1 keep their precision.
func betaPPF(p, a, b float64) float64 {
	switch {
	case math.IsNaN(p) || !(a > 0) || !(b > 0):
		return math.NaN()
	case p <= 0:
		return 0
	case p >= 1:
		return 1
	case a == b && 2*p == 1:
		return 0.5 // a symmetric Beta's median is exactly 1/2 (boost's ibeta_inv returns its inflection point)
	case 2*p > 1: // above the median
		return 1 - betaPPFLower(1-p, b, a)
	}
	return betaPPFLower(p, a, b)
}

// betaPPFLower solves I_x(a, b) = p for p ≤ 1/2 by Newton's method on a shrinking bracket, bisecting when
// a step leaves it. The start is NR's invbetai guess (a normal approximation when a, b ≥ 1, else the
// leading power-law terms at either end), which already has the right order of magnitude for tiny p.
func betaPPFLower(p, a, b float64) float64 {
	lnB := lnBeta(a, b)
	lo, hi := 0.0, 1.0
	x := betaPPFGuess(p, a, b)
	for i := 0; i < betaPPFIter; i++ {
		f := regIncBeta(a, b, x) - p
		if f == 0 {
			return x
		}
		if f < 0 {
			lo = x
		} else {
			hi = x
		}
		pdf := math.Exp(float64((a-1)*math.Log(x)) + float64((b-1)*math.Log1p(-x)) - lnB)
		next := x - f/pdf
		if !(next > lo && next < hi) {
			next = lo + (hi-lo)/2
		}
		if math.Abs(next-x) <= 2e-16*x || next == x {
			return next
		}
		x = next
	}
	return x
}

// betaPPFGuess is Numerical Recipes' (3rd ed., §6.14) starting value for the inverse incomplete beta.
func betaPPFGuess(p, a, b float64) float64 {
	var x float64
	if a >= 1 && b >= 1 {
		t := math.Sqrt(-2 * math.Log(p))
		z := (2.30753+t*0.27061)/(1+t*(0.99229+t*0.04481)) - t
		al := (z*z - 3) / 6
		h := 2 / (1/(2*a-1) + 1/(2*b-1))
		w := z*math.Sqrt(al+h)/h - (1/(2*b-1)-1/(2*a-1))*(al+5.0/6-2/(3*h))
		x = a / (a + b*math.Exp(2*w))
	} else {
		lna, lnb := math.Log(a/(a+b)), math.Log(b/(a+b))
		t := math.Exp(a*lna) / a
		u := math.Exp(b*lnb) / b
		w := t + u
		if p < t/w {
			x = math.Pow(a*w*p, 1/a)
		} else {
			x = 1 - math.Pow(b*w*(1-p), 1/b)
		}
	}
	if !(x > 0 && x < 1) || math.IsNaN(x) {
		x = 0.5
	}
	return x
}
