package join

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"slices"
)

// rec is one (token, position) record of a list in sorted form. The token
// is represented by its first 8 bytes read big-endian, so that numeric order
// of keys is lexicographic order of tokens; on equal keys the remaining 24
// bytes are read from the list through pos. Tokens are uniform, so the key
// alone decides almost every comparison and the records stay small
// (16 bytes) and cache-friendly. The merge sets inI, which lives in what
// would otherwise be padding.
type rec struct {
	key uint64
	pos uint32
	inI bool // the token is in all lists; set by the merge
}

// keyOf returns the sort key of t.
func keyOf(t *Token) uint64 { return binary.BigEndian.Uint64(t[:8]) }

// cmpRec orders records a of list la and b of list lb by their tokens.
func cmpRec(la []Token, a rec, lb []Token, b rec) int {
	if a.key != b.key {
		if a.key < b.key {
			return -1
		}
		return 1
	}
	return bytes.Compare(la[a.pos][8:], lb[b.pos][8:])
}

// radixBits returns the number of leading key bits sortList buckets on for
// a list of n tokens: about n/16 to n/8 buckets (so the bucket counts cost
// at most half a byte per token), at most 2^16.
func radixBits(n int) uint {
	b := bits.Len(uint(n))
	if b <= 4 {
		return 0
	}
	return min(uint(b-4), 16)
}

// sortList fills out (len(out) == len(list)) with the records of list in
// token order and reports whether list holds a token twice.
//
// It makes one counting pass over the leading radixBits(len(list)) bits of
// the keys, scatters records straight into their buckets (so no scratch
// array is needed), and sorts each bucket by comparison: insertion sort for
// the typical bucket of a few records, pdqsort for large ones, so skewed
// input degrades to O(n log n), never worse.
func sortList(list []Token, out []rec) (dup bool) {
	b := radixBits(len(list))
	if b == 0 {
		for i := range list {
			out[i] = rec{key: keyOf(&list[i]), pos: uint32(i)}
		}
		sortBucket(list, out)
	} else {
		shift := 64 - b
		next := make([]uint32, 1<<b)
		for i := range list {
			next[keyOf(&list[i])>>shift]++
		}
		var sum uint32
		for d, c := range next {
			next[d] = sum
			sum += c
		}
		for i := range list {
			k := keyOf(&list[i])
			d := k >> shift
			out[next[d]] = rec{key: k, pos: uint32(i)}
			next[d]++
		}
		// next[d] is now the end of bucket d.
		var start uint32
		for _, end := range next {
			sortBucket(list, out[start:end])
			start = end
		}
	}
	for i := 1; i < len(out); i++ {
		if out[i].key == out[i-1].key && list[out[i].pos] == list[out[i-1].pos] {
			return true
		}
	}
	return false
}

// insertionMax is the bucket length up to which sortBucket uses insertion
// sort.
const insertionMax = 24

// sortBucket sorts recs of list in token order.
func sortBucket(list []Token, recs []rec) {
	if len(recs) <= insertionMax {
		for i := 1; i < len(recs); i++ {
			r := recs[i]
			j := i
			for ; j > 0 && cmpRec(list, r, list, recs[j-1]) < 0; j-- {
				recs[j] = recs[j-1]
			}
			recs[j] = r
		}
		return
	}
	slices.SortFunc(recs, func(a, b rec) int { return cmpRec(list, a, list, b) })
}
