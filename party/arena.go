package party

import (
	"bytes"
	"hash/maphash"
	"math/bits"
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
// keys: an open-addressing table (linear probing) whose slots hold a record
// index and a 32-bit tag, the high half of the key's 64-bit hash. Each key
// is hashed once. A probe compares tags and reads a key from the arena only
// when its tag is equal (the key itself, or about one false match in 2^(32-b)
// probes for a table of 2^b slots). A key's home slot is its tag's top b
// bits, so growing the table moves slots by their tags without reading or
// hashing any key.
type keySet struct {
	seed  maphash.Seed
	slots []uint64 // tag<<32 | (record+1); 0 is an empty slot
	shift uint     // 32 - b: a tag's home slot is tag >> shift
	n     int
	sink  uint64 // written by callers of near, so that its loads stay
}

// near reads tag's home slot: a caller about to look up several keys reads
// their slots first, so that the cache misses of a large table overlap,
// and stores the sum in sink.
func (s *keySet) near(tag uint32) uint64 {
	return s.slots[tag>>s.shift]
}

// Sizes of a keySet's table: at least keySetMinSlots slots, at most
// keySetMaxSlots (tags have 32 bits, record indices fit in 32 bits below
// that bound's load), filled to at most 3/4.
const (
	keySetMinSlots = 64
	keySetMaxSlots = 1 << 32
)

// newKeySet returns an empty set sized for hint keys without growing (0:
// no estimate).
func newKeySet(hint int) *keySet {
	s := &keySet{seed: maphash.MakeSeed()}
	s.resize(slotsFor(hint))
	return s
}

// slotsFor is the smallest table size that holds n keys at a load of at
// most 3/4.
func slotsFor(n int) int {
	size := keySetMinSlots
	for 3*size < 4*n && uint64(size) < keySetMaxSlots {
		size *= 2
	}
	return size
}

// reserve grows the table, if needed, to hold n keys in all without growing
// again.
func (s *keySet) reserve(n int) {
	if size := slotsFor(n); size > len(s.slots) {
		s.resize(size)
	}
}

// resize moves the slots into a table of size slots (a power of two, at
// least the number of keys).
func (s *keySet) resize(size int) {
	old := s.slots
	s.slots = make([]uint64, size)
	s.shift = uint(32 - bits.TrailingZeros(uint(size)))
	for _, e := range old {
		if e != 0 {
			s.put(e)
		}
	}
}

// tag returns key's tag.
func (s *keySet) tag(key []byte) uint32 {
	return uint32(maphash.Bytes(s.seed, key) >> 32)
}

// find returns the record holding key, or -1, and key's tag (for insert).
// keys.item(r) must be record r's key.
func (s *keySet) find(keys *arena[[]byte], key []byte) (int, uint32) {
	tag := s.tag(key)
	return s.findTag(keys, key, tag), tag
}

// findTag is find for a key whose tag is known.
func (s *keySet) findTag(keys *arena[[]byte], key []byte, tag uint32) int {
	mask := len(s.slots) - 1
	for i := int(tag >> s.shift); ; i = (i + 1) & mask {
		e := s.slots[i]
		if e == 0 {
			return -1
		}
		if uint32(e>>32) == tag {
			if r := int(uint32(e)) - 1; bytes.Equal(keys.item(r), key) {
				return r
			}
		}
	}
}

// insert adds record r, whose key has the tag find returned and is not in
// the set yet.
func (s *keySet) insert(r int, tag uint32) {
	if 4*(s.n+1) > 3*len(s.slots) {
		if uint64(len(s.slots)) >= keySetMaxSlots {
			panic("party: keySet: more than 3<<30 keys") // max_set_size is at most 1<<31
		}
		s.resize(2 * len(s.slots))
	}
	s.put(uint64(tag)<<32 | uint64(uint32(r+1)))
	s.n++
}

// put stores slot value e in the first empty slot from its tag's home.
func (s *keySet) put(e uint64) {
	mask := len(s.slots) - 1
	i := int(uint32(e>>32) >> s.shift)
	for s.slots[i] != 0 {
		i = (i + 1) & mask
	}
	s.slots[i] = e
}
