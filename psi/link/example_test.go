package link_test

import (
	"crypto/sha256"
	"fmt"

	"github.com/mpsi-dev/mpsi/psi/join"
	"github.com/mpsi-dev/mpsi/psi/link"
)

// Two hospitals, two keys (an SSN, then a coarser name-and-year key). The
// first record pair shares the SSN; the second pair lacks one at hospital
// B but agrees on the second key. Tokens here are SHA-256 of the key
// values; in a session they come from the dh ring or the keyed PRF.
func ExampleGroup() {
	tok := func(s string) join.Token { return sha256.Sum256([]byte(s)) }
	lists := [][][]join.Token{
		{ // key 0: ssn (a missing value is a filler that matches nothing)
			{tok("ssn:123"), tok("ssn:456")},
			{tok("ssn:123"), tok("filler-b1")},
		},
		{ // key 1: surname code, initial, birth year
			{tok("s530 j 1980"), tok("b650 a 1975")},
			{tok("s530 j 1980"), tok("b650 a 1975")},
		},
	}
	res, err := link.Group(lists, link.Options{Groups: true})
	if err != nil {
		panic(err)
	}
	fmt.Println("complete groups:", res.Complete, "per key:", res.Completed)
	fmt.Println("groups:", res.Groups)
	// Output:
	// complete groups: 2 per key: [1 1]
	// groups: [[{0 0} {1 0}] [{0 1} {1 1}]]
}
