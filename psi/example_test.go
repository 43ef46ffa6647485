package psi_test

import (
	"fmt"

	"github.com/mpsi-dev/mpsi/psi"
)

// Two parties run the dh ring in the x25519 group: each hashes and blinds
// its own keys, then blinds the other's list; shared keys give equal tokens.
func ExampleGenerateRingKey() {
	a, err := psi.GenerateRingKey(psi.GroupX25519)
	if err != nil {
		panic(err)
	}
	b, err := psi.GenerateRingKey(psi.GroupX25519)
	if err != nil {
		panic(err)
	}
	const session = "example-session"
	listA := [][]byte{[]byte("ana|1970-01-01"), []byte("bo|1980-02-02")}
	listB := [][]byte{[]byte("bo|1980-02-02"), []byte("cy|1990-03-03")}
	ta, tb := make([]psi.Point, len(listA)), make([]psi.Point, len(listB))
	if err := a.HashAndBlind(session, listA, ta, 0); err != nil {
		panic(err)
	}
	if err := b.HashAndBlind(session, listB, tb, 0); err != nil {
		panic(err)
	}
	// Each list visits the other party.
	if err := b.Blind(ta, ta, 0); err != nil {
		panic(err)
	}
	if err := a.Blind(tb, tb, 0); err != nil {
		panic(err)
	}
	fmt.Println(ta[0] == tb[0], ta[1] == tb[0], ta[1] == tb[1])
	// Output: false true false
}
