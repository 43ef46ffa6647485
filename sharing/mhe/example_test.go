package mhe_test

import (
	"fmt"
	"log"

	"github.com/mpsi-dev/mpsi/sharing/mhe"
)

// Example walks the encrypted aggregation for three hospitals with a 2-of-3
// key: key generation, contributions, evaluation by the coordinator, output
// to a recipient by two parties (the third has gone away). Each contribution
// is (value, value², count). Every message goes through its wire encoding.
func Example() {
	lit := mhe.ProfileB()
	lit.Parties, lit.Threshold = 3, 2
	lit.Components, lit.MaxRecords = 3, 1000
	lit.MaxAbs = []uint64{1 << 16, 1 << 32, 1}
	params, err := mhe.NewParams(lit)
	if err != nil {
		log.Fatal(err)
	}
	session, err := mhe.NewSessionID(params, "example-session")
	if err != nil {
		log.Fatal(err)
	}
	send := func(m, into binaryMessage) {
		b, err := m.MarshalBinary()
		if err != nil {
			log.Fatal(err)
		}
		if err := into.UnmarshalBinary(b); err != nil {
			log.Fatal(err)
		}
	}

	// Parties: key shares.
	parties := make([]*mhe.Party, 3)
	ckg := make([]*mhe.CKGShareMsg, 3)
	gkg := make([]*mhe.GaloisSharesMsg, 3)
	for i := range parties {
		parties[i], _ = mhe.NewParty(params, session, mhe.PartyID(i))
		c, _ := parties[i].GenCKGShare()
		g, _ := parties[i].GenGaloisShares()
		ckg[i], gkg[i] = params.NewCKGShareMsg(), params.NewGaloisSharesMsg()
		send(c, ckg[i])
		send(g, gkg[i])
	}

	// Coordinator: collective public key and Galois keys.
	coord, _ := mhe.NewCoordinator(params, session)
	pk, err := coord.AggregateCKG(ckg)
	if err != nil {
		log.Fatal(err)
	}
	if err := coord.AggregateGalois(gkg); err != nil {
		log.Fatal(err)
	}
	cpk := params.NewPublicKeyMsg()
	send(pk, cpk)

	// Parties: Shamir shares of the key (sealed to each recipient in practice).
	inbox := make([][]*mhe.ThresholdShareMsg, 3)
	for _, p := range parties {
		out, _ := p.GenThresholdShares()
		for _, m := range out {
			in := params.NewThresholdShareMsg()
			send(m, in)
			inbox[in.To] = append(inbox[in.To], in)
		}
	}
	for i, p := range parties {
		if err := p.AggregateThresholdShares(inbox[i]); err != nil {
			log.Fatal(err)
		}
	}

	// Parties: contributions in their shuffled order.
	values := [][]int64{{10, 20, 30}, {5, -7}, {100, 1, 2, 3}}
	var cts []*mhe.CiphertextMsg
	for i, p := range parties {
		rows := make([][]uint64, len(values[i]))
		for k, v := range values[i] {
			rows[k] = []uint64{uint64(v), uint64(v * v), 1}
		}
		out, err := p.EncryptContributions(cpk, rows)
		if err != nil {
			log.Fatal(err)
		}
		for _, m := range out {
			in := params.NewCiphertextMsg()
			send(m, in)
			cts = append(cts, in)
		}
	}

	// Coordinator: the intersection indicators, evaluation, PCKS request.
	indicators := [][]bool{{true, false, true}, {true, true}, {false, true, false, false}}
	agg, err := coord.Evaluate(cts, indicators)
	if err != nil {
		log.Fatal(err)
	}
	active := []mhe.PartyID{0, 1} // party 2 has gone away
	req, _ := agg.PCKSRequest(active)

	// Recipient: its key.
	recipient, rkey, _ := mhe.NewRecipient(params, session)

	// Active parties: PCKS shares.
	var shares []*mhe.PCKSShareMsg
	for _, a := range active {
		sh, err := parties[a].GenPCKSShare(req, rkey)
		if err != nil {
			log.Fatal(err)
		}
		shares = append(shares, sh)
	}

	// Coordinator: combine; recipient: decrypt.
	res, err := agg.KeySwitch(active, shares)
	if err != nil {
		log.Fatal(err)
	}
	out, err := recipient.Decrypt(res)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("sum=%d sum_sq=%d count=%d\n", int64(out[0]), int64(out[1]), int64(out[2]))
	b, _ := cts[0].MarshalBinary()
	fmt.Printf("ciphertext: %d bytes for %d positions\n", len(b), params.PositionsPerCiphertext())
	// Output:
	// sum=39 sum_sq=1075 count=5
	// ciphertext: 262188 bytes for 2048 positions
}
