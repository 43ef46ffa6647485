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
	cred, _ := recordkey.NewCredential() // issued at registration, kept by the hospital and the patient's terminal
	k, _ := relay.Derive(recordkey.Input(fromDB, cred))
	ct, _ := recordkey.Seal(k, []byte("conditions: ..."))
	index := k.Index()
	// Cloud: stores (index, ct).

	// Patient terminal: derives the same key obliviously from what the patient types.
	typed, _ := identity.Encode(identity.Fields{Given: " ADA ", Family: "lovelace", BirthDate: "1815-12-10", NationalID: "999 00 1815"})
	q, blinded, _ := recordkey.NewQuery("hospital-a", relay.PublicKey(), recordkey.Input(typed, cred))
	evaluated, proof, _ := relay.Evaluate(blinded) // the relay sees only blinded
	mine, err := q.Finalize(evaluated, proof)
	fmt.Println("proof verified:", err == nil)
	fmt.Println("same index:", mine.Index() == index)
	pt, _ := recordkey.Open(mine, ct)
	fmt.Printf("patient reads: %s\n", pt)

	// Patient → doctor: the grant is sealed end to end.
	patientKey, _ := recordkey.GenerateTerminalKey()
	doctorKey, _ := recordkey.GenerateTerminalKey()
	// It carries the read key only; the cloud serves the ciphertext to the
	// doctor while the patient's signed permit (grant id) is unrevoked.
	id, _ := recordkey.NewGrantID()
	sealed, _ := recordkey.SealGrant(patientKey, "patient", "dr-lee", doctorKey.PublicKey(),
		&recordkey.Grant{Reads: []recordkey.Read{{Key: mine.ReadKey(), ID: id}}})
	g, _ := recordkey.OpenGrant(doctorKey, "patient", "dr-lee", patientKey.PublicKey(), sealed)
	pt, _ = recordkey.OpenRead(g.Reads[0].Key, ct)
	fmt.Printf("doctor reads: %s\n", pt)
	// Output:
	// proof verified: true
	// same index: true
	// patient reads: conditions: ...
	// doctor reads: conditions: ...
}
