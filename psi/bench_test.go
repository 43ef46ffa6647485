package psi

import (
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/cloudflare/circl/group"
	gtank "github.com/gtank/ristretto255"
)

func benchPoints(b *testing.B, n int) []Point {
	b.Helper()
	k := dhKeyFromSeed("bench")
	out := make([]Point, n)
	if err := k.HashAndBlind("bench", keys(n, "b"), out, 0); err != nil {
		b.Fatal(err)
	}
	return out
}

func BenchmarkHashToGroup(b *testing.B) {
	key := []byte("given=jose|family=alvarez|dob=1970-01-01|sex=M")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := HashToGroup("bench", key); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBlind measures one dh hop: decode + scalar multiplication +
// encode, per element, over a batch, on 1 and 2 workers. Compare its
// elements/s with BenchmarkRawScalarMult for the ceiling ratio.
func BenchmarkBlind(b *testing.B) {
	const batch = 2048
	in := benchPoints(b, batch)
	out := make([]Point, batch)
	k := dhKeyFromSeed("hop")
	for _, w := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := k.Blind(in, out, w); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(batch)*float64(b.N)/b.Elapsed().Seconds(), "elem/s")
		})
	}
}

func BenchmarkHashAndBlind(b *testing.B) {
	const batch = 2048
	in := keys(batch, "patient")
	out := make([]Point, batch)
	k := dhKeyFromSeed("hop")
	b.ReportAllocs()
	for b.Loop() {
		if err := k.HashAndBlind("bench", in, out, 1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batch)*float64(b.N)/b.Elapsed().Seconds(), "elem/s")
}

// BenchmarkRawScalarMult is the ceiling: decode + variable-base scalar
// multiplication + encode with no batching, checks or goroutines, in circl
// (the implementation we use) and gtank/ristretto255 on filippo.io/edwards25519.
func BenchmarkRawScalarMult(b *testing.B) {
	p := benchPoints(b, 1)[0]
	b.Run("impl=circl", func(b *testing.B) {
		g := group.Ristretto255
		s := g.RandomNonZeroScalar(rand.Reader)
		e := g.NewElement()
		enc := p[:]
		for b.Loop() {
			_ = e.UnmarshalBinary(enc)
			e.Mul(e, s)
			enc, _ = e.MarshalBinary()
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "elem/s")
	})
	b.Run("impl=gtank", func(b *testing.B) {
		var buf [64]byte
		_, _ = rand.Read(buf[:])
		s, _ := gtank.NewScalar().SetUniformBytes(buf[:])
		e := gtank.NewIdentityElement()
		enc := p[:]
		for b.Loop() {
			_, _ = e.SetCanonicalBytes(enc)
			e.ScalarMult(s, e)
			enc = e.Bytes()
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "elem/s")
	})
}

func BenchmarkKeyedTokens(b *testing.B) {
	const batch = 65536
	var c1, c2 KeyContribution
	c1[0], c2[0] = 1, 2
	g, _ := DeriveGroupKey("bench", []KeyContribution{c1, c2})
	in := keys(batch, "given=jose|family=alvarez|dob=1970-01-01|sex=M")
	out := make([][TokenSize]byte, batch)
	for _, w := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = g.KeyedTokens("bench", in, out, w)
			}
			b.ReportMetric(float64(batch)*float64(b.N)/b.Elapsed().Seconds(), "elem/s")
		})
	}
}
