package clk

import (
	"math/rand/v2"
	"testing"
)

func benchSets(b *testing.B, n, parties int) []*Set {
	b.Helper()
	rng := rand.New(rand.NewPCG(16, 3)) // seeded: deterministic benchmark data
	return toSets(b, randomParties(rng, parties, n/2, n, 1024, 120), 1024)
}

// BenchmarkDice is the raw coefficient on 1024-bit CLKs.
func BenchmarkDice(b *testing.B) {
	s := benchSets(b, 1024, 2)
	b.ResetTimer()
	var sum float64
	for i := 0; b.Loop(); i++ {
		sum += Dice(s[0], i&1023, s[1], (i*7)&1023)
	}
	_ = sum
}

// BenchmarkExhaustive reports pairs/s of the exhaustive candidate search.
func BenchmarkExhaustive(b *testing.B) {
	s := benchSets(b, 3000, 2)
	for b.Loop() {
		if _, _, err := FindCandidates(b.Context(), s, LinkOptions{Threshold: 0.8, Blocking: BlockingNone}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*3000*3000/b.Elapsed().Seconds(), "pairs/s")
}

// BenchmarkLSH links three parties of 20k CLKs with LSH blocking.
func BenchmarkLSH(b *testing.B) {
	s := benchSets(b, 20000, 3)
	for b.Loop() {
		if _, err := Link(b.Context(), s, LinkOptions{Threshold: 0.8, Blocking: BlockingLSH}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()*1e6/float64(b.N)/60000, "µs/record")
}
