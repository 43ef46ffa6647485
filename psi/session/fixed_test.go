package session_test

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/psi/session"
)

var roundings = []string{session.RoundingStrict, session.RoundingHalfEven, session.RoundingHalfUp, session.RoundingTruncate}

func TestParseFixedRounding(t *testing.T) {
	const refused = "refused"
	cases := []struct {
		in    string
		scale int
		// want under strict, half_even, half_up and truncate: a fixed-point
		// integer, or refused.
		want [4]any
	}{
		// 2.675 is 2.67499999999999982236431605997495353221893310546875 as a
		// float64: a float rounding gives 2.67, the decimal one 2.68.
		{"2.675", 2, [4]any{refused, 268, 268, 267}},
		{"2.665", 2, [4]any{refused, 266, 267, 266}},
		{"2.6650000001", 2, [4]any{refused, 267, 267, 266}},
		{"2.66499999999", 2, [4]any{refused, 266, 266, 266}},
		{"-2.675", 2, [4]any{refused, -268, -268, -267}},
		{"-2.665", 2, [4]any{refused, -266, -267, -266}},
		{"-0.125", 2, [4]any{refused, -12, -13, -12}},
		{"-0.004", 2, [4]any{refused, 0, 0, 0}},
		{"-0.005", 2, [4]any{refused, 0, -1, 0}},
		{"0.5", 0, [4]any{refused, 0, 1, 0}},
		{"1.5", 0, [4]any{refused, 2, 2, 1}},
		{"2.5", 0, [4]any{refused, 2, 3, 2}},
		{"2.51", 0, [4]any{refused, 3, 3, 2}},
		{"9.99", 1, [4]any{refused, 100, 100, 99}},
		{"99.95", 1, [4]any{refused, 1000, 1000, 999}},
		{"3.140", 2, [4]any{314, 314, 314, 314}}, // zeros beyond the scale: never rounded
		{"3.1400000000000000000", 2, [4]any{314, 314, 314, 314}},
		{"3.1", 2, [4]any{310, 310, 310, 310}},
		{"+7.25", 1, [4]any{refused, 72, 73, 72}},
		{"0.0000000005", 9, [4]any{refused, 0, 1, 0}},
		{"0.0000000015", 9, [4]any{refused, 2, 2, 1}},
		// 2^62 = 4611686018427387904: rounding up past it is too large.
		{"4611686018427387904.4", 0, [4]any{refused, int64(1) << 62, int64(1) << 62, int64(1) << 62}},
		{"4611686018427387903.5", 0, [4]any{refused, int64(1) << 62, int64(1) << 62, int64(1)<<62 - 1}},
		{"4611686018427387904.5", 0, [4]any{refused, int64(1) << 62, refused, int64(1) << 62}},
		{"4611686018427387904.6", 0, [4]any{refused, refused, refused, int64(1) << 62}},
		{"-4611686018427387904.6", 0, [4]any{refused, refused, refused, -int64(1) << 62}},
		// Not numbers, whatever the rounding.
		{"2.", 2, [4]any{refused, refused, refused, refused}},
		{".5", 0, [4]any{refused, refused, refused, refused}},
		{"1e3", 0, [4]any{refused, refused, refused, refused}},
		{"1.2.3", 0, [4]any{refused, refused, refused, refused}},
		{"1.5x", 0, [4]any{refused, refused, refused, refused}},
		{"", 0, [4]any{refused, refused, refused, refused}},
	}
	for _, tc := range cases {
		for i, r := range roundings {
			t.Run(fmt.Sprintf("%s/%d/%s", tc.in, tc.scale, r), func(t *testing.T) {
				got, err := session.ParseFixedRounding(tc.in, tc.scale, r)
				if tc.want[i] == refused {
					require.Error(t, err)
					return
				}
				require.NoError(t, err)
				var want int64
				switch w := tc.want[i].(type) {
				case int:
					want = int64(w)
				case int64:
					want = w
				}
				require.Equal(t, want, got)
			})
		}
	}
	_, err := session.ParseFixedRounding("2.675", 2, "half_odd")
	require.ErrorContains(t, err, `unknown rounding "half_odd"`)
	_, err = session.ParseFixedRounding("2.675", 2, session.RoundingStrict)
	require.ErrorContains(t, err, `"2.675" has more than 2 decimal places (the declared scale; the aggregate's rounding may round it)`)
}

// roundRat is the math/big reference for ParseFixedRounding: s·10^scale
// as a rational, rounded by the definition of each mode.
func roundRat(s string, scale int, rounding string) (int64, bool) {
	if len(s) > 40 {
		return 0, false
	}
	r, ok := scaledRat(s, scale)
	if !ok {
		return 0, false
	}
	neg := r.Sign() < 0
	r.Abs(r)
	q := new(big.Int).Quo(r.Num(), r.Denom()) // truncated magnitude
	frac := new(big.Rat).Sub(r, new(big.Rat).SetInt(q))
	half := big.NewRat(1, 2)
	if frac.Sign() != 0 {
		up := false
		switch rounding {
		case session.RoundingStrict:
			return 0, false
		case session.RoundingHalfUp:
			up = frac.Cmp(half) >= 0
		case session.RoundingHalfEven:
			c := frac.Cmp(half)
			up = c > 0 || (c == 0 && q.Bit(0) == 1)
		}
		if up {
			q.Add(q, big.NewInt(1))
		}
	}
	if q.Cmp(new(big.Int).Lsh(big.NewInt(1), 62)) > 0 {
		return 0, false
	}
	if neg {
		q.Neg(q)
	}
	return q.Int64(), true
}

// Every rounding agrees with the math/big reference on random decimals,
// many of them ties (a 5 after the scale).
func TestParseFixedRoundingMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 6)) // test inputs only
	for i := 0; i < 50000; i++ {
		var b strings.Builder
		switch rng.IntN(4) {
		case 0:
			b.WriteByte('-')
		case 1:
			b.WriteByte('+')
		}
		for range 1 + rng.IntN(20) {
			b.WriteByte(byte('0' + rng.IntN(10)))
		}
		if rng.IntN(8) != 0 {
			b.WriteByte('.')
			for j := range 1 + rng.IntN(14) {
				d := byte('0' + rng.IntN(10))
				if j > 0 && rng.IntN(3) == 0 {
					d = '0' // trailing zeros make exact ties
				} else if rng.IntN(3) == 0 {
					d = '5'
				}
				b.WriteByte(d)
			}
		}
		s, scale := b.String(), rng.IntN(session.MaxScale+1)
		for _, r := range roundings {
			got, err := session.ParseFixedRounding(s, scale, r)
			want, ok := roundRat(s, scale, r)
			require.Equal(t, ok, err == nil, "%q scale %d %s: %v", s, scale, r, err)
			if ok {
				require.Equal(t, want, got, "%q scale %d %s", s, scale, r)
			}
		}
	}
}

func FuzzParseFixedRounding(f *testing.F) {
	for _, s := range []string{"2.675", "-0.125", "4611686018427387903.5", "1e5", "", "9.99", "+0.5"} {
		f.Add(s, 2, uint8(1))
	}
	f.Fuzz(func(t *testing.T, s string, scale int, mode uint8) {
		if scale < 0 || scale > session.MaxScale {
			return
		}
		r := roundings[int(mode)%len(roundings)]
		got, err := session.ParseFixedRounding(s, scale, r)
		want, ok := roundRat(s, scale, r)
		require.Equal(t, ok, err == nil, "%q scale %d %s: %v", s, scale, r, err)
		if ok {
			require.Equal(t, want, got)
		}
	})
}

// An aggregate's rounding applies to the values a party contributes,
// before the range check: an aggregate without one refuses the same value.
func TestContributeRounds(t *testing.T) {
	spec, err := session.ParseSpec([]byte(`{"id":"r","parties":["a","b"],"fields":{"n":"name","w":"number"},"match":{"fields":["n"]},"reveal":["aggregates"],
"aggregates":[{"name":"even","kind":"sum","field":"w","min":0,"max":10,"scale":2,"rounding":"half_even"},
{"name":"up","kind":"histogram","field":"w","edges":[0,2.67,10],"scale":2,"rounding":"half_up"},
{"name":"cut","kind":"variance","field":"w","min":0,"max":10,"scale":2,"rounding":"truncate"},
{"name":"strict","kind":"mean","field":"w","min":0,"max":10,"scale":2,"from":["b"]}]}`))
	require.NoError(t, err)
	require.Contains(t, string(spec.Canonical()), `"rounding":"half_even"`)
	l, err := session.NewLayout(spec)
	require.NoError(t, err)
	for _, tc := range []struct {
		w    string
		want []uint64 // even Σ,# | up bins | cut Σ, Σ², #
	}{
		{"2.675", []uint64{268, 1, 0, 1, 267, 267 * 267, 1}},
		{"2.665", []uint64{266, 1, 0, 1, 266, 266 * 266, 1}},
		{"2.66499", []uint64{266, 1, 1, 0, 266, 266 * 266, 1}},
		{"10.004", []uint64{1000, 1, 0, 1, 1000, 1000 * 1000, 1}}, // in range once rounded
	} {
		v := make([]uint64, l.Len())
		require.NoError(t, l.Contribute(0, func(string) string { return tc.w }, v), tc.w)
		require.Equal(t, append(tc.want, 0, 0), v, tc.w) // nothing to "strict" (from b only)
		// Party b also contributes to "strict", which refuses the value.
		err := l.Contribute(1, func(string) string { return tc.w }, make([]uint64, l.Len()))
		require.ErrorIs(t, err, session.ErrValue, tc.w)
		require.ErrorContains(t, err, `aggregate "strict"`)
	}
	v := make([]uint64, l.Len())
	require.ErrorIs(t, l.Contribute(0, func(string) string { return "10.005" }, v), session.ErrValue, "half_up makes 10.005 10.01, outside the histogram's [0, 10]")
}

// Each fault of a value has a kind that callers can report without the
// value, which the error's text quotes.
func TestValueFaultKinds(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind error
	}{
		{"x7", session.ErrNotNumber}, {"1.", session.ErrNotNumber},
		{"2.675", session.ErrTooManyDecimals},
		{"99999999999999999999", session.ErrTooLarge},
	} {
		_, err := session.ParseFixedRounding(tc.in, 2, session.RoundingStrict)
		require.ErrorIs(t, err, tc.kind, tc.in)
		require.Contains(t, err.Error(), tc.in, "the text quotes the value, for the hospital")
		require.NotContains(t, tc.kind.Error(), tc.in)
	}
	spec, err := session.ParseSpec([]byte(`{"id":"r","parties":["a","b"],"fields":{"n":"name","w":"number"},"match":{"fields":["n"]},"reveal":["aggregates"],
"aggregates":[{"name":"s","kind":"sum","field":"w","min":0,"max":10}]}`))
	require.NoError(t, err)
	l, err := session.NewLayout(spec)
	require.NoError(t, err)
	err = l.Contribute(0, func(string) string { return "11" }, make([]uint64, l.Len()))
	require.ErrorIs(t, err, session.ErrValue)
	require.ErrorIs(t, err, session.ErrOutOfRange)
	require.NotErrorIs(t, err, session.ErrNotNumber)
}
