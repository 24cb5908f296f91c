package textenc

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
)

// HF tokenizers reads tokenizer.json with serde_json's default number parser (no float_roundtrip):
// the decimal digits are accumulated into a u64 significand, converted to f64, then divided (or
// multiplied) once by an f64 power of ten. That is one rounding more than a correctly rounded parse
// and gives a value 1 ulp off for about a quarter of the T5 scores — which decides exact ties between
// equal-score segmentations (runs of 3k+1 dashes). serdeParseFloat and f32ScoreAsHF reproduce it.

var (
	serdePow10Once sync.Once
	serdePow10Tab  [309]float64 // serde_json's POW10: the f64 literals 1e0 … 1e308
)

func serdePow10(i int) float64 {
	serdePow10Once.Do(func() {
		for k := range serdePow10Tab {
			serdePow10Tab[k], _ = strconv.ParseFloat("1e"+strconv.Itoa(k), 64)
		}
	})
	return serdePow10Tab[i]
}

var errSerdeOutOfRange = errors.New("number out of range")

// serdeF64FromParts is serde_json's f64_from_parts without float_roundtrip.
func serdeF64FromParts(positive bool, significand uint64, exponent int) (float64, error) {
	f := float64(significand)
	for {
		abs := exponent
		if abs < 0 {
			abs = -abs
		}
		if abs < len(serdePow10Tab) {
			if exponent >= 0 {
				f *= serdePow10(abs)
				if math.IsInf(f, 0) {
					return 0, errSerdeOutOfRange
				}
			} else {
				f /= serdePow10(abs)
			}
			break
		}
		if f == 0 {
			break
		}
		if exponent >= 0 {
			return 0, errSerdeOutOfRange
		}
		f /= 1e308
		exponent += 308
	}
	if !positive {
		f = -f
	}
	return f, nil
}

// serdeParseFloat parses a JSON number literal exactly as serde_json (default features) does when
// deserializing it into an f64.
func serdeParseFloat(lit string) (float64, error) {
	bad := errors.New("invalid number " + strconv.Quote(lit))
	s, positive := lit, true
	if strings.HasPrefix(s, "-") {
		s, positive = s[1:], false
	}
	const maxDiv10, maxMod10 = math.MaxUint64 / 10, math.MaxUint64 % 10
	var sig uint64
	exp, i, overflow := 0, 0, false
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		d := uint64(s[i] - '0')
		switch {
		case overflow || (sig >= maxDiv10 && (sig > maxDiv10 || d > maxMod10)):
			overflow = true // parse_long_integer: drop the digit, keep its place value
			exp++
		default:
			sig = sig*10 + d
		}
	}
	if i == 0 || (i > 1 && s[0] == '0') {
		return 0, bad
	}
	isFloat := false
	if i < len(s) && s[i] == '.' {
		isFloat = true
		j, dropRest := i+1, false
		for i = j; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			d := uint64(s[i] - '0')
			if dropRest || (sig >= maxDiv10 && (sig > maxDiv10 || d > maxMod10)) {
				dropRest = true // parse_decimal_overflow: ignore the remaining digits
				continue
			}
			sig = sig*10 + d
			exp--
		}
		if i == j {
			return 0, bad
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		return serdeExponent(s[i+1:], positive, sig, exp, bad)
	}
	if i != len(s) {
		return 0, bad
	}
	if !isFloat && !overflow {
		f := float64(sig)
		if !positive {
			f = -f
		}
		return f, nil
	}
	return serdeF64FromParts(positive, sig, exp)
}

// serdeExponent is serde_json's parse_exponent (+ parse_exponent_overflow) on the text after 'e'.
func serdeExponent(s string, positive bool, sig uint64, exp int, bad error) (float64, error) {
	posExp := true
	if s != "" && (s[0] == '+' || s[0] == '-') {
		posExp = s[0] == '+'
		s = s[1:]
	}
	if s == "" {
		return 0, bad
	}
	e := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, bad
		}
		d := int(s[i] - '0')
		if e >= math.MaxInt32/10 && (e > math.MaxInt32/10 || d > math.MaxInt32%10) {
			if sig != 0 && posExp {
				return 0, errSerdeOutOfRange
			}
			if !positive {
				return math.Copysign(0, -1), nil
			}
			return 0, nil
		}
		e = e*10 + d
	}
	if posExp {
		exp += e
	} else {
		exp -= e
	}
	return serdeF64FromParts(positive, sig, exp)
}

// f32ScoreAsHF is the score HF ends up with for a SentencePiece float32 score after transformers'
// converter wrote it into tokenizer.json (serde_json prints the f64 with ryu, shortest round-trip
// digits) and tokenizers read it back (serdeParseFloat).
func f32ScoreAsHF(score float32) (float64, error) {
	f := float64(score)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, errors.New("score is not finite")
	}
	if f == 0 {
		return 0, nil // ryu prints "0.0" / "-0.0"; serde gives ±0, equal under every comparison
	}
	txt := strconv.FormatFloat(math.Abs(f), 'e', -1, 64) // d.ddde±XX, the same shortest digits as ryu
	mant, expTxt, _ := strings.Cut(txt, "e")
	digits := strings.Replace(mant, ".", "", 1)
	e10, err := strconv.Atoi(expTxt)
	if err != nil {
		return 0, err
	}
	sig, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, err
	}
	k := e10 - (len(digits) - 1) // value = sig × 10^k
	if kk := len(digits) + k; k >= 0 && kk <= 16 {
		// ryu writes integers of up to 16 digits as "1234000.0": serde sees sig×10^(k+1) and 10^-1.
		for ; k >= 0; k-- {
			sig *= 10
		}
		return serdeF64FromParts(f > 0, sig, -1)
	}
	return serdeF64FromParts(f > 0, sig, k)
}
