package sharing

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20"
)

// expandChaCha20 is the ChaCha20 alternative to Expand, kept only to measure
// it against AES-256-CTR (see "Choice of PRG" in doc.go). It mirrors Expand:
// same HKDF derivation (44 bytes: key and nonce), same word conversion.
func expandChaCha20(seed Seed, context []byte, length int) Vector {
	okm, err := hkdf.Key(sha256.New, seed[:], nil, labelExpand+string(context), chacha20.KeySize+chacha20.NonceSize)
	if err != nil {
		panic(err)
	}
	s, err := chacha20.NewUnauthenticatedCipher(okm[:chacha20.KeySize], okm[chacha20.KeySize:])
	if err != nil {
		panic(err)
	}
	return expandStream(s, length)
}

var benchSink Vector

// reportCPU adds a cpu-ns/op metric (process CPU time, including GC, per
// iteration) measured since start; see processCPUTime.
func reportCPU(b *testing.B, start time.Duration) {
	if start == 0 || b.N == 0 {
		return
	}
	b.ReportMetric(float64(processCPUTime()-start)/float64(b.N), "cpu-ns/op")
}

func BenchmarkExpand(b *testing.B) {
	prgs := []struct {
		name   string
		expand func(Seed, []byte, int) Vector
	}{
		{"aes-ctr", Expand},
		{"chacha20", expandChaCha20},
	}
	ctx := []byte("session-0123456789abcdef/round-4/from-1/to-2")
	for _, words := range []int{1 << 10, 1 << 20} {
		for _, p := range prgs {
			b.Run(fmt.Sprintf("prg=%s/words=%d", p.name, words), func(b *testing.B) {
				var seed Seed // the input does not affect the cost
				b.ReportAllocs()
				b.SetBytes(int64(wordSize * words))
				cpu := processCPUTime()
				for b.Loop() {
					benchSink = p.expand(seed, ctx, words)
				}
				reportCPU(b, cpu)
			})
		}
	}
}

func BenchmarkZeroSumMasks(b *testing.B) {
	for _, n := range []int{3, 8} {
		for _, words := range []int{1 << 10, 1 << 20} {
			b.Run(fmt.Sprintf("parties=%d/words=%d", n, words), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(wordSize * words * n))
				defer reportCPU(b, processCPUTime())
				for b.Loop() {
					masks, err := ZeroSumMasks(n, words)
					if err != nil {
						b.Fatal(err)
					}
					benchSink = masks[0]
				}
			})
		}
	}
}

// BenchmarkBlind measures one party's arithmetic after expansion: SelfKey
// over n−1 outgoing keys and Blind over n−1 incoming keys. Bytes are the
// key material consumed, 2(n−1)·8·words.
func BenchmarkBlind(b *testing.B) {
	for _, n := range []int{3, 8} {
		for _, words := range []int{1 << 10, 1 << 20} {
			b.Run(fmt.Sprintf("parties=%d/words=%d", n, words), func(b *testing.B) {
				mask := Expand(Seed{0}, nil, words)
				x := Expand(Seed{1}, nil, words)
				keys := make([]Vector, n-1)
				for j := range keys {
					keys[j] = Expand(Seed{byte(2 + j)}, nil, words)
				}
				b.ReportAllocs()
				b.SetBytes(int64(wordSize * words * 2 * (n - 1)))
				defer reportCPU(b, processCPUTime())
				for b.Loop() {
					kii, err := SelfKey(mask, keys)
					if err != nil {
						b.Fatal(err)
					}
					z, err := Blind(x, kii, keys)
					if err != nil {
						b.Fatal(err)
					}
					benchSink = z
				}
			})
		}
	}
}
