package party

import (
	"bytes"
	"hash/maphash"
	"sort"
)

// Chunk sizes of an arena: the first chunk is small (small inputs stay
// small), each next one twice the last, up to arenaMaxChunk.
const (
	arenaMinChunk = 4 << 10
	arenaMaxChunk = 1 << 20
)

// arena holds variable-length items back to back in chunks. No item
// straddles two chunks and a full chunk is never moved, so growing the
// arena copies nothing already stored; an item costs its bytes plus 4
// bytes of offset (and a chunk's unused tail). With T = string, items are
// substrings of sealed chunks (each chunk is copied once into a string when
// it is full); with T = []byte they share the chunks' memory.
type arena[T string | []byte] struct {
	sealed []T           // full chunks
	cur    []byte        // the chunk being filled
	first  []int         // first[c]: index of chunk c's first item (sealed chunks, then cur)
	start  []chunkOffset // start[i]: item i's offset in its chunk
}

// chunkOffset is an offset in an arena chunk (a type of its own, not to be
// mistaken for the []uint32 intersection positions a party must not hold).
type chunkOffset uint32

// len is the number of items.
func (a *arena[T]) len() int { return len(a.start) }

// add appends a copy of b as the next item.
func (a *arena[T]) add(b []byte) {
	a.next(len(b))
	a.cur = append(a.cur, b...)
}

// addString appends a copy of s as the next item.
func (a *arena[T]) addString(s string) {
	a.next(len(s))
	a.cur = append(a.cur, s...)
}

// next starts an item of n bytes, in a new chunk if the current one has no
// room for it.
func (a *arena[T]) next(n int) {
	if len(a.first) == 0 || len(a.cur)+n > cap(a.cur) {
		size := arenaMinChunk
		if len(a.first) > 0 {
			a.sealChunk()
			size = min(2*cap(a.cur), arenaMaxChunk)
		}
		a.cur = make([]byte, 0, max(size, n))
		a.first = append(a.first, len(a.start))
	}
	a.start = append(a.start, chunkOffset(len(a.cur)))
}

func (a *arena[T]) sealChunk() {
	a.sealed = append(a.sealed, T(a.cur))
}

// seal freezes the arena: the chunk being filled is sealed (for strings,
// copied without its unused tail). Items may be read before, but adding
// after seal is not allowed.
func (a *arena[T]) seal() {
	if len(a.first) > len(a.sealed) {
		a.sealChunk()
		a.cur = nil
	}
}

// item returns item i. Before seal, an item of the chunk being filled is
// converted (copied, for strings).
func (a *arena[T]) item(i int) T {
	last := len(a.first) - 1
	c := last
	if i < a.first[last] {
		// The chunk is the last one whose first item is at most i.
		c = sort.Search(last, func(c int) bool { return a.first[c] > i }) - 1
	}
	s := a.start[i]
	next := i+1 < len(a.start) && (c == last || i+1 < a.first[c+1])
	if c < len(a.sealed) {
		chunk := a.sealed[c]
		e := chunkOffset(len(chunk))
		if next {
			e = a.start[i+1]
		}
		return chunk[s:e]
	}
	e := chunkOffset(len(a.cur))
	if next {
		e = a.start[i+1]
	}
	return T(a.cur[s:e])
}

// keySet finds records by match key without holding a second copy of the
// keys: an open-addressing table of 1-based record indices, probed by a
// hash of the key and confirmed by comparing the key in the arena.
type keySet struct {
	seed  maphash.Seed
	slots []uint32
	n     int
}

func newKeySet() *keySet {
	return &keySet{seed: maphash.MakeSeed(), slots: make([]uint32, 64)}
}

// find returns the record holding key, or -1. keys[r] must be record r's
// key.
func (s *keySet) find(keys *arena[[]byte], key []byte) int {
	mask := uint64(len(s.slots) - 1)
	for h := maphash.Bytes(s.seed, key) & mask; ; h = (h + 1) & mask {
		r := s.slots[h]
		if r == 0 {
			return -1
		}
		if bytes.Equal(keys.item(int(r-1)), key) {
			return int(r - 1)
		}
	}
}

// insert adds record r, whose key must not be in the set yet.
func (s *keySet) insert(keys *arena[[]byte], r int) {
	if 4*(s.n+1) > 3*len(s.slots) {
		old := s.slots
		s.slots = make([]uint32, 2*len(old))
		s.n = 0
		for _, o := range old {
			if o != 0 {
				s.put(keys, int(o-1))
			}
		}
	}
	s.put(keys, r)
}

func (s *keySet) put(keys *arena[[]byte], r int) {
	mask := uint64(len(s.slots) - 1)
	h := maphash.Bytes(s.seed, keys.item(r)) & mask
	for s.slots[h] != 0 {
		h = (h + 1) & mask
	}
	s.slots[h] = uint32(r + 1)
	s.n++
}
