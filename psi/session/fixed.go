package session

import (
	"errors"
	"fmt"
	"strings"
)

// Roundings of an aggregate ([Aggregate.Rounding]): what becomes of a
// record value with more decimals than the aggregate's scale. Each works
// on the decimal digits as written, never through a float, and is
// symmetric about zero (it rounds the magnitude, then restores the sign).
const (
	// RoundingStrict, the default, refuses such a value (the row is bad).
	RoundingStrict = ""
	// RoundingHalfEven rounds to the nearest value at the scale, ties to
	// the even last digit (banker's rounding; IEEE 754's default):
	// 2.675 → 2.68, 2.665 → 2.66, -0.125 → -0.12 at scale 2.
	RoundingHalfEven = "half_even"
	// RoundingHalfUp rounds to the nearest value at the scale, ties away
	// from zero (Java's HALF_UP, Python's ROUND_HALF_UP, school rounding):
	// 2.665 → 2.67, -0.125 → -0.13 at scale 2.
	RoundingHalfUp = "half_up"
	// RoundingTruncate drops the extra digits (rounds toward zero):
	// 2.679 → 2.67, -2.679 → -2.67 at scale 2.
	RoundingTruncate = "truncate"
)

// What is wrong with a record value, for a caller that reports a rejected
// value without quoting it: errors.Is(err, ErrNotNumber) and so on hold for
// the errors of [ParseFixedRounding] and [Layout.Contribute], whose text
// quotes the value. None of them carries a value.
var (
	ErrNotNumber       = errors.New("not a number")
	ErrTooManyDecimals = errors.New("more decimals than the scale")
	ErrTooLarge        = errors.New("beyond ±2^62 at the scale")
	ErrOutOfRange      = errors.New("outside [min, max]")
)

// valueFault is an error quoting a value (msg) of a kind that does not.
type valueFault struct {
	kind error
	msg  string
}

func (e *valueFault) Error() string { return e.msg }
func (e *valueFault) Unwrap() error { return e.kind }

func faultf(kind error, format string, a ...any) error {
	return &valueFault{kind, fmt.Sprintf(format, a...)}
}

// checkRounding validates an aggregate's rounding.
func checkRounding(at string, a *Aggregate) error {
	switch a.Rounding {
	case RoundingStrict:
		return nil
	case RoundingHalfEven, RoundingHalfUp, RoundingTruncate:
	default:
		return specErr(at+".rounding", "unknown rounding %q (want %s, %s or %s; omit it to refuse values with more decimals than scale)", a.Rounding, RoundingHalfEven, RoundingHalfUp, RoundingTruncate)
	}
	switch a.Kind {
	case KindSum, KindMean, KindVariance, KindHistogram:
		return nil
	}
	return specErr(at+".rounding", "applies only to sum, mean, variance and histogram (kind is %s)", a.Kind)
}

// ParseFixed parses a decimal value (optional sign, digits, optional
// fraction; no exponent) to fixed point at scale: exactly, with integer
// arithmetic (it runs once per value per record). Extra fraction digits are
// accepted only when they are zeros; |result| must not exceed 2^62. It is
// [ParseFixedRounding] with [RoundingStrict].
func ParseFixed(s string, scale int) (int64, error) {
	return ParseFixedRounding(s, scale, RoundingStrict)
}

// ParseFixedRounding is [ParseFixed] with a rounding for fraction digits
// beyond scale: [RoundingStrict] refuses a value unless they are all zeros,
// the others round exactly on the decimal digits ("2.675" at scale 2 is
// 268 under [RoundingHalfEven], not the 267 a float64 would suggest). The
// rounded |result| must not exceed 2^62. An unknown rounding is an error.
// Errors quote s: they stay with the party that holds the value.
func ParseFixedRounding(s string, scale int, rounding string) (int64, error) {
	bad := func() (int64, error) { return 0, faultf(ErrNotNumber, "%q is not a number", s) }
	if s == "" || len(s) > 40 || scale < 0 || scale > MaxScale {
		return bad()
	}
	switch rounding {
	case RoundingStrict, RoundingHalfEven, RoundingHalfUp, RoundingTruncate:
	default:
		return 0, fmt.Errorf("session: unknown rounding %q", rounding)
	}
	body := s
	neg := false
	switch body[0] {
	case '-':
		neg, body = true, body[1:]
	case '+':
		body = body[1:]
	}
	intPart, frac, hasDot := strings.Cut(body, ".")
	if intPart == "" || (hasDot && frac == "") {
		return bad()
	}
	const limit = uint64(1) << 62
	var v uint64
	digit := func(c byte) (uint64, bool) { return uint64(c - '0'), c >= '0' && c <= '9' }
	overflow := false
	mulAdd := func(d uint64) {
		if v > (limit-d)/10 {
			overflow = true
			return
		}
		v = v*10 + d
	}
	for i := 0; i < len(intPart); i++ {
		d, ok := digit(intPart[i])
		if !ok {
			return bad()
		}
		mulAdd(d)
	}
	// first is the first digit beyond the scale; rest reports a non-zero
	// digit after it.
	var first uint64
	rest := false
	for i := 0; i < len(frac); i++ {
		d, ok := digit(frac[i])
		if !ok {
			return bad()
		}
		switch {
		case i < scale:
			mulAdd(d)
		case i == scale:
			first = d
		default:
			rest = rest || d != 0
		}
	}
	for i := len(frac); i < scale; i++ {
		mulAdd(0)
	}
	if first != 0 || rest {
		up := false
		switch rounding {
		case RoundingStrict:
			return 0, faultf(ErrTooManyDecimals, "%q has more than %d decimal places (the declared scale; the aggregate's rounding may round it)", s, scale)
		case RoundingHalfUp:
			up = first >= 5
		case RoundingHalfEven:
			up = first > 5 || (first == 5 && (rest || v%2 == 1))
		}
		if up {
			v++ // v ≤ 2^62 here, so this cannot wrap; the check below sees it
		}
	}
	if overflow || v > limit {
		return 0, faultf(ErrTooLarge, "%q is too large", s)
	}
	if neg {
		return -int64(v), nil
	}
	return int64(v), nil
}
