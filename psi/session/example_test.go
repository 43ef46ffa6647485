package session_test

import (
	"fmt"

	"github.com/mpsi-dev/mpsi/psi/session"
)

// A value with more decimals than the aggregate's scale is refused unless
// the aggregate sets a rounding, which works on the decimal digits: 2.675
// is a tie at scale 2 (a float64 would hold it as 2.67499…).
func ExampleParseFixedRounding() {
	for _, r := range []string{session.RoundingStrict, session.RoundingHalfEven, session.RoundingHalfUp, session.RoundingTruncate} {
		v, err := session.ParseFixedRounding("2.675", 2, r)
		fmt.Printf("%-12q %d %v\n", r, v, err)
	}
	// Output:
	// ""           0 "2.675" has more than 2 decimal places (the declared scale; the aggregate's rounding may round it)
	// "half_even"  268 <nil>
	// "half_up"    268 <nil>
	// "truncate"   267 <nil>
}
