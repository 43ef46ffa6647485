package clk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// ErrCLK is wrapped by errors about CLKs that do not fit the schema: a
// wrong length, or padding bits set past the schema's length.
var ErrCLK = errors.New("clk: malformed CLK")

// Set is one party's CLKs in the form the linker compares: 64-bit words and
// popcounts. Record positions are the CLKs' indices.
type Set struct {
	bits  int
	words int
	data  []uint64
	pop   []uint32
}

// Len is the number of CLKs in the set.
func (s *Set) Len() int { return len(s.pop) }

// Bits is the CLK length in bits.
func (s *Set) Bits() int { return s.bits }

// Popcount returns the number of bits set in CLK i.
func (s *Set) Popcount(i int) int { return int(s.pop[i]) }

func (s *Set) clk(i int) []uint64 { return s.data[i*s.words : (i+1)*s.words] }

// NewSet checks and packs CLKs of the given bit length (each (bits+7)/8
// bytes, as [Encoder.Encode] returns them).
func NewSet(bits int, clks [][]byte) (*Set, error) {
	s, err := newSet(bits, len(clks))
	if err != nil {
		return nil, err
	}
	for i, c := range clks {
		if err := s.add(i, c); err != nil {
			return nil, fmt.Errorf("CLK %d: %w", i, err)
		}
	}
	return s, nil
}

// DecodeSet parses CLKs concatenated without separators, as a party sends
// them: len(data) must be a multiple of (bits+7)/8. It refuses any other
// length, and padding bits set beyond bits (which no encoder produces).
func DecodeSet(bits int, data []byte) (*Set, error) {
	if bits <= 0 || bits > maxBloomBits {
		return nil, fmt.Errorf("%w: CLK length %d bits", ErrCLK, bits)
	}
	n := (bits + 7) / 8
	if len(data)%n != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a whole number of %d-byte CLKs", ErrCLK, len(data), n)
	}
	s, err := newSet(bits, len(data)/n)
	if err != nil {
		return nil, err
	}
	for i := 0; i < s.Len(); i++ {
		if err := s.add(i, data[i*n:(i+1)*n]); err != nil {
			return nil, fmt.Errorf("CLK %d: %w", i, err)
		}
	}
	return s, nil
}

func newSet(bits, n int) (*Set, error) {
	if bits <= 0 || bits > maxBloomBits {
		return nil, fmt.Errorf("%w: CLK length %d bits", ErrCLK, bits)
	}
	w := (bits + 63) / 64
	return &Set{bits: bits, words: w, data: make([]uint64, n*w), pop: make([]uint32, n)}, nil
}

func (s *Set) add(i int, c []byte) error {
	n := (s.bits + 7) / 8
	if len(c) != n {
		return fmt.Errorf("%w: %d bytes, the schema's CLKs have %d", ErrCLK, len(c), n)
	}
	if r := s.bits % 8; r != 0 && c[n-1]&(0xff>>r) != 0 {
		return fmt.Errorf("%w: padding bits past bit %d are set", ErrCLK, s.bits)
	}
	var buf [8]byte
	w := s.clk(i)
	var pop int
	for j := range w {
		clear(buf[:])
		copy(buf[:], c[min(j*8, n):min(j*8+8, n)])
		w[j] = binary.BigEndian.Uint64(buf[:])
		pop += bits.OnesCount64(w[j])
	}
	s.pop[i] = uint32(pop)
	return nil
}

// Dice is the Sørensen–Dice coefficient 2|a∧b| / (|a|+|b|) of CLK i of a
// and CLK j of b, computed as anonlink does (in float64; 0 when both are
// empty).
func Dice(a *Set, i int, b *Set, j int) float64 {
	pa, pb := a.pop[i], b.pop[j]
	if pa+pb == 0 {
		return 0
	}
	return float64(2*andCount(a.clk(i), b.clk(j))) / float64(pa+pb)
}

func andCount(x, y []uint64) uint32 {
	var c int
	if len(x) == 16 && len(y) == 16 { // 1024-bit CLKs, the common case: unrolled
		c = bits.OnesCount64(x[0]&y[0]) + bits.OnesCount64(x[1]&y[1]) + bits.OnesCount64(x[2]&y[2]) + bits.OnesCount64(x[3]&y[3]) +
			bits.OnesCount64(x[4]&y[4]) + bits.OnesCount64(x[5]&y[5]) + bits.OnesCount64(x[6]&y[6]) + bits.OnesCount64(x[7]&y[7]) +
			bits.OnesCount64(x[8]&y[8]) + bits.OnesCount64(x[9]&y[9]) + bits.OnesCount64(x[10]&y[10]) + bits.OnesCount64(x[11]&y[11]) +
			bits.OnesCount64(x[12]&y[12]) + bits.OnesCount64(x[13]&y[13]) + bits.OnesCount64(x[14]&y[14]) + bits.OnesCount64(x[15]&y[15])
		return uint32(c)
	}
	y = y[:len(x)]
	for k := range x {
		c += bits.OnesCount64(x[k] & y[k])
	}
	return uint32(c)
}
