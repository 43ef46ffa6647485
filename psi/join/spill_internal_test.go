package join

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"reflect"
	"testing"
)

func TestPrefixBits(t *testing.T) {
	var tok Token
	for i := range tok {
		tok[i] = byte(0x5a ^ i*37)
	}
	bit := func(i int) int { return int(tok[i/8]>>(7-i%8)) & 1 }
	for d := range tokenBits {
		for k := 1; k <= maxSplitBits; k++ {
			want := 0
			for j := d; j < d+k; j++ {
				want <<= 1
				if j < tokenBits {
					want |= bit(j)
				}
			}
			if got := prefixBits(&tok, d, k); got != want {
				t.Fatalf("prefixBits(d=%d, k=%d) = %#x, want %#x", d, k, got, want)
			}
		}
	}
}

func TestCommonPrefixBits(t *testing.T) {
	var a Token
	for i := range a {
		a[i] = byte(i * 13)
	}
	if got := commonPrefixBits(&a, &a); got != tokenBits {
		t.Fatalf("commonPrefixBits(a, a) = %d, want %d", got, tokenBits)
	}
	for d := range tokenBits {
		b := a
		b[d/8] ^= 0x80 >> (d % 8)
		b[TokenSize-1] ^= 1 // later bits do not matter
		if d/8 == TokenSize-1 && d%8 == 7 {
			b[TokenSize-1] ^= 1
		}
		if got := commonPrefixBits(&a, &b); got != d {
			t.Fatalf("commonPrefixBits with bit %d flipped = %d", d, got)
		}
	}
}

// spillTokens returns count distinct tokens whose first prefix bytes are
// zero and the rest pseudorandom.
func spillTokens(seed uint64, count, prefix int) []Token {
	ts := randomTokens(seed, count)
	for i := range ts {
		clear(ts[i][:prefix])
		binary.BigEndian.PutUint32(ts[i][TokenSize-4:], uint32(i)) // distinct
	}
	return ts
}

// spillAll runs a Spiller over lists with the given budget and returns it
// after Join; the caller closes it.
func spillAll(t *testing.T, lists [][]Token, opt SpillOptions) (*Spiller, *Result) {
	t.Helper()
	sizes := make([]int, len(lists))
	for i, l := range lists {
		sizes[i] = len(l)
	}
	s, err := NewSpiller(sizes, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for i, l := range lists {
		for k := 0; k < len(l); k += 1000 {
			if err := s.Add(i, uint64(k), l[k:min(k+1000, len(l))]); err != nil {
				t.Fatal(err)
			}
		}
	}
	res, err := s.Join(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want, err := Join(lists, Options{Pairwise: opt.Pairwise, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res, want) {
		t.Fatalf("Spiller.Join = %+v, want %+v", res, want)
	}
	return s, res
}

// TestSpillSplitBudget checks that every partition joined in memory fits
// the per-worker budget: uniform partitions of expected size fit, and a
// partition that does not (here, skewed tokens all in partition 0) is
// split until its parts do.
func TestSpillSplitBudget(t *testing.T) {
	for _, tc := range []struct {
		name   string
		prefix int // leading zero bytes of every token
		splits bool
	}{
		{"uniform", 0, false},
		{"skewed-2", 2, true},
		{"skewed-24", 24, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := spillTokens(1, 20000, tc.prefix), spillTokens(2, 20000, tc.prefix)
			copy(b[:5000], a[5000:])
			opt := SpillOptions{Budget: 1 << 20, Workers: 2, Dir: t.TempDir()}
			s, _ := spillAll(t, [][]Token{a, b}, opt)
			if s.Partitions() < 4 {
				t.Fatalf("%d partitions, want several", s.Partitions())
			}
			if s.stats.maxLoad > s.partBudget {
				t.Errorf("a partition of %d bytes was loaded, budget %d", s.stats.maxLoad, s.partBudget)
			}
			if (s.stats.splits > 0) != tc.splits {
				t.Errorf("%d splits, want splits: %t", s.stats.splits, tc.splits)
			}
			t.Logf("%d partitions, %d splits, largest load %d of %d bytes", s.Partitions(), s.stats.splits, s.stats.maxLoad, s.partBudget)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if entries, _ := os.ReadDir(opt.Dir); len(entries) != 0 {
				t.Fatalf("%d entries left after Close", len(entries))
			}
		})
	}
}

// TestSpillWriteError makes the spill file unwritable: the write error is
// returned, sticks, and Close still removes everything.
func TestSpillWriteError(t *testing.T) {
	dir := t.TempDir()
	s, err := NewSpiller([]int{3000}, SpillOptions{Budget: 1 << 20, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ro, err := os.Open(s.file.Name())
	if err != nil {
		t.Fatal(err)
	}
	s.file.Close()
	s.file = ro
	toks := randomTokens(3, 3000)
	if err := s.Add(0, 0, toks); err == nil {
		t.Fatal("Add with a read-only spill file succeeded")
	}
	werr := s.err
	if err := s.Add(0, 0, toks); err != werr {
		t.Fatalf("second Add error = %v, want the first write error %v", err, werr)
	}
	if _, err := s.Join(context.Background()); err != werr {
		t.Fatalf("Join error = %v, want the write error %v", err, werr)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("%d entries left after Close", len(entries))
	}
	if err := s.Add(0, 0, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close = %v, want %v", err, ErrClosed)
	}
}
