package sharing_test

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mpsi-dev/mpsi/sharing"
)

// Example walks three parties through masked aggregation: the coordinator
// deals zero-sum masks, each party sends a seed to every other party,
// splits its mask into keys and blinds its input, and the coordinator adds
// the submissions. Sealing and transport are left out.
func Example() {
	const n, length = 3, 4
	inputs := []sharing.Vector{ // x_i: e.g. counts per cell
		{10, 0, 3, 1},
		{5, 2, 0, 1},
		{1, 1, 1, 1},
	}
	// The context binds an expansion to (session, round, sender, recipient).
	context := func(from, to int) []byte {
		b := []byte("session-1234")
		b = binary.BigEndian.AppendUint32(b, 4)
		b = binary.BigEndian.AppendUint32(b, uint32(from))
		return binary.BigEndian.AppendUint32(b, uint32(to))
	}

	// Coordinator: deal masks r_i; r_i goes to party i.
	masks, err := sharing.ZeroSumMasks(n, length)
	if err != nil {
		panic(err)
	}

	// Every party i: draw s_ij for j ≠ i (sent sealed to j).
	seeds := make([][]sharing.Seed, n)
	for i := range n {
		seeds[i] = make([]sharing.Seed, n)
		for j := range n {
			if j != i {
				if seeds[i][j], err = sharing.NewSeed(); err != nil {
					panic(err)
				}
			}
		}
	}

	// Every party i: k_ii = r_i − Σ k_ij, then z_i = x_i + k_ii + Σ k_ji.
	submissions := make([]sharing.Vector, n)
	for i := range n {
		var outgoing, incoming []sharing.Vector
		for j := range n {
			if j != i {
				outgoing = append(outgoing, sharing.Expand(seeds[i][j], context(i, j), length))
				incoming = append(incoming, sharing.Expand(seeds[j][i], context(j, i), length))
			}
		}
		selfKey, err := sharing.SelfKey(masks[i], outgoing)
		if err != nil {
			panic(err)
		}
		if submissions[i], err = sharing.Blind(inputs[i], selfKey, incoming); err != nil {
			panic(err)
		}
		fmt.Printf("party %d: z_%d hides x_%d: %v\n", i, i, i, !submissions[i].Equal(inputs[i]))
	}

	// Coordinator: the masks and keys cancel.
	total, err := sharing.Sum(submissions)
	if err != nil {
		panic(err)
	}
	fmt.Println("coordinator: Σ z_i =", total)

	// A truncated submission is rejected, not summed.
	_, err = sharing.Sum([]sharing.Vector{submissions[0], submissions[1][:3], submissions[2]})
	fmt.Println("coordinator:", err)
	// Output:
	// party 0: z_0 hides x_0: true
	// party 1: z_1 hides x_1: true
	// party 2: z_2 hides x_2: true
	// coordinator: Σ z_i = [16 3 4 3]
	// coordinator: sharing: length mismatch: vector 1 has 3 words, vector 0 has 4
}

func ExampleZeroSumMasks() {
	masks, err := sharing.ZeroSumMasks(5, 3)
	if err != nil {
		panic(err)
	}
	sum, err := sharing.Sum(masks)
	if err != nil {
		panic(err)
	}
	fmt.Println(len(masks), "masks, sum:", sum)

	_, err = sharing.ZeroSumMasks(1, 3)
	fmt.Println(err)
	// Output:
	// 5 masks, sum: [0 0 0]
	// sharing: invalid argument: 1 parties, need at least 2
}

func ExampleVector_MarshalBinary() {
	v := sharing.Vector{1, 1<<64 - 1}
	enc, err := v.MarshalBinary()
	if err != nil {
		panic(err)
	}
	fmt.Printf("%x\n", enc)

	_, err = sharing.UnmarshalVector(append(enc, 0), 2)
	fmt.Println(err, errors.Is(err, sharing.ErrMalformedVector))
	_, err = sharing.UnmarshalVector(enc, 1)
	fmt.Println(err, errors.Is(err, sharing.ErrTooLong))
	// Output:
	// 020000000100000000000000ffffffffffffffff
	// sharing: malformed vector: 2 words need 16 bytes, have 17 true
	// sharing: vector too long: 2 words, maximum 1 true
}

func ExampleVector_Add() {
	v := sharing.Vector{1<<64 - 1, 5}
	if err := v.Add(sharing.Vector{2, 1}); err != nil {
		panic(err)
	}
	fmt.Println(v) // arithmetic is modulo 2^64
	fmt.Println(v.Add(sharing.Vector{1}))
	// Output:
	// [1 6]
	// sharing: length mismatch: adding 1 words to 2
}
