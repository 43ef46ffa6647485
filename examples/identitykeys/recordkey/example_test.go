package recordkey_test

import (
	"fmt"

	"github.com/mpsi-dev/mpsi/examples/identitykeys/identity"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/recordkey"
)

// Example walks the protocol for one hospital, one patient and one doctor.
func Example() {
	// Hospital relay: holds the OPRF key, seals the patient's bundle.
	relay, _ := recordkey.GenerateEvaluator("hospital-a")
	fromDB, _ := identity.Encode(identity.Fields{Given: "Ada", Family: "Lovelace", BirthDate: "1815-12-10", NationalID: "999-00-1815"})
	k, _ := relay.Derive(fromDB)
	ct, _ := recordkey.Seal(k, []byte("conditions: ..."))
	index := k.Index()
	// Cloud: stores (index, ct).

	// Patient terminal: derives the same key obliviously from what the patient types.
	typed, _ := identity.Encode(identity.Fields{Given: " ADA ", Family: "lovelace", BirthDate: "1815-12-10", NationalID: "999 00 1815"})
	q, blinded, _ := recordkey.NewQuery("hospital-a", relay.PublicKey(), typed)
	evaluated, proof, _ := relay.Evaluate(blinded) // the relay sees only blinded
	mine, err := q.Finalize(evaluated, proof)
	fmt.Println("proof verified:", err == nil)
	fmt.Println("same index:", mine.Index() == index)
	pt, _ := recordkey.Open(mine, ct)
	fmt.Printf("patient reads: %s\n", pt)

	// Patient → doctor: the grant is sealed end to end.
	patientKey, _ := recordkey.GenerateTerminalKey()
	doctorKey, _ := recordkey.GenerateTerminalKey()
	sealed, _ := recordkey.SealGrant(patientKey, "patient", "dr-lee", doctorKey.PublicKey(), &recordkey.Grant{Keys: []*recordkey.Key{mine}})
	g, _ := recordkey.OpenGrant(doctorKey, "patient", "dr-lee", patientKey.PublicKey(), sealed)
	pt, _ = recordkey.Open(g.Keys[0], ct)
	fmt.Printf("doctor reads: %s\n", pt)
	// Output:
	// proof verified: true
	// same index: true
	// patient reads: conditions: ...
	// doctor reads: conditions: ...
}
