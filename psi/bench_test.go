package psi

import (
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/cloudflare/circl/dh/x25519"
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

// BenchmarkDHSuites measures both dh suites and their floors interleaved
// in every iteration (so machine load hits all alike), one core, over a
// batch: the x25519 hop (X25519Key.Blind: canonical check, circl ladder,
// low-order check), circl's raw x25519.Shared on the same inputs, the
// ristretto255 hop (DHKey.Blind) and each suite's first hop
// (HashAndBlind). It reports µs per element and the ratios
// hop/raw (aim ≤ 1.1) and ristretto255 hop / x25519 hop.
func BenchmarkDHSuites(b *testing.B) {
	const batch = 256
	ks := keys(batch, "given=jose|family=alvarez|dob=1970-01-01|sex=M|")
	xk, rk := x25519KeyFromSeed("hop"), dhKeyFromSeed("hop")
	xin, rin := make([]Point, batch), make([]Point, batch)
	if err := x25519KeyFromSeed("owner").HashAndBlind("bench", ks, xin, 1); err != nil {
		b.Fatal(err)
	}
	if err := dhKeyFromSeed("owner").HashAndBlind("bench", ks, rin, 1); err != nil {
		b.Fatal(err)
	}
	out := make([]Point, batch)
	var raw x25519.Key
	var d [5]time.Duration // x hop, raw, r hop, x first, r first
	lap := func(i int, f func()) {
		t := time.Now()
		f()
		d[i] += time.Since(t)
	}
	for b.Loop() {
		lap(0, func() {
			if err := xk.Blind(xin, out, 1); err != nil {
				b.Fatal(err)
			}
		})
		lap(1, func() {
			for i := range xin {
				if !x25519.Shared(&raw, &xk.k, (*x25519.Key)(&xin[i])) {
					b.Fatal("low order")
				}
			}
		})
		lap(2, func() {
			if err := rk.Blind(rin, out, 1); err != nil {
				b.Fatal(err)
			}
		})
		lap(3, func() {
			if err := xk.HashAndBlind("bench", ks, out, 1); err != nil {
				b.Fatal(err)
			}
		})
		lap(4, func() {
			if err := rk.HashAndBlind("bench", ks, out, 1); err != nil {
				b.Fatal(err)
			}
		})
	}
	per := func(i int) float64 { return d[i].Seconds() * 1e6 / float64(b.N*batch) }
	b.ReportMetric(per(0), "x25519-hop-µs")
	b.ReportMetric(per(1), "circl-raw-µs")
	b.ReportMetric(per(2), "r255-hop-µs")
	b.ReportMetric(per(3), "x25519-first-µs")
	b.ReportMetric(per(4), "r255-first-µs")
	b.ReportMetric(per(0)/per(1), "hop/raw")
	b.ReportMetric(per(2)/per(0), "r255/x25519")
}
