package protocol_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mpsi-dev/mpsi/psi/protocol"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// A value error stays with the hospital; what leaves it names the
// aggregate, the field and a reference.
func ExampleRedact() {
	detail := &session.ValueError{Aggregate: "age", Field: "age", Err: errors.New(`"1959-13-28" is not a number`)}
	r := protocol.Redact(protocol.CodeUnspecified, "hospital-a", detail)
	fmt.Println(r.Code)
	fmt.Println(strings.Replace(r.Public, r.Ref, "REF", 1))
	fmt.Println(strings.Contains(r.Error(), "1959-13-28"), strings.Contains(r.Public, "1959-13-28"))
	// Output:
	// input
	// hospital-a: a record value could not be used for aggregate "age" (field "age"); the details are in hospital-a's own log, ref REF
	// true false
}
