package party

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Items of every size, empty ones and ones larger than a chunk included,
// read back the same before and after sealing, from either kind of arena.
func TestArena(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 3))
	var want []string
	var s arena[string]
	var b arena[[]byte]
	for k := 0; k < 40000; k++ {
		var item string
		switch r := rng.IntN(1000); {
		case r < 10:
			item = ""
		case r < 12:
			item = strings.Repeat("z", arenaMaxChunk+rng.IntN(10))
		default:
			item = fmt.Sprintf("%d-%s", k, strings.Repeat("a", rng.IntN(200)))
		}
		want = append(want, item)
		s.addString(item)
		b.add([]byte(item))
		if k%997 == 0 {
			for _, i := range []int{0, k / 2, k} {
				require.Equal(t, want[i], s.item(i))
				require.Equal(t, want[i], string(b.item(i)))
			}
		}
	}
	require.Greater(t, len(s.first), 10)
	check := func() {
		require.Equal(t, len(want), s.len())
		require.Equal(t, len(want), b.len())
		for i, w := range want {
			if s.item(i) != w || string(b.item(i)) != w {
				t.Fatalf("item %d: %.20q, %.20q, want %.20q", i, s.item(i), b.item(i), w)
			}
		}
	}
	check()
	s.seal()
	b.seal()
	check()
	require.Nil(t, s.cur, "a sealed string arena keeps no byte chunk")
}

// keySet finds every inserted key, by content, and no other.
func TestKeySet(t *testing.T) {
	var keys arena[[]byte]
	set := newKeySet(0)
	find := func(key []byte) int {
		r, tag := set.find(&keys, key)
		require.Equal(t, set.tag(key), tag)
		return r
	}
	for k := 0; k < 100000; k++ {
		key := []byte(fmt.Sprintf("key-%d", k))
		r, tag := set.find(&keys, key)
		require.Equal(t, -1, r)
		keys.add(key)
		set.insert(k, tag)
	}
	for k := 0; k < 100000; k++ {
		require.Equal(t, k, find([]byte(fmt.Sprintf("key-%d", k))))
	}
	require.Equal(t, -1, find([]byte("key-100000")))
	require.Equal(t, -1, find(nil))
	require.LessOrEqual(t, len(set.slots), 4*100000/3*2, "the table stays within twice its minimum size")
}

// keySet tells keys apart whose tags are equal (here: all of them, with
// a constant tag), by their bytes, and keeps finding them after growing.
func TestKeySetEqualTags(t *testing.T) {
	var keys arena[[]byte]
	set := newKeySet(0)
	const tag = 0xdeadbeef
	for k := 0; k < 200; k++ {
		key := []byte(fmt.Sprintf("k%d", k))
		r, _ := set.find(&keys, key)
		require.Equal(t, -1, r)
		keys.add(key)
		// Forge the collision: every record gets the same tag.
		set.insert(k, tag)
	}
	require.Greater(t, len(set.slots), keySetMinSlots, "the table grew")
	// find hashes the key itself, so look the slots up by hand: each
	// record is in the one probe run from the tag's home slot.
	mask := len(set.slots) - 1
	seen := map[int]bool{}
	for i, n := int(tag>>set.shift), 0; n < 200; i, n = (i+1)&mask, n+1 {
		e := set.slots[i]
		require.NotZero(t, e, "slot %d of the run is empty", n)
		require.Equal(t, uint32(tag), uint32(e>>32))
		seen[int(uint32(e))-1] = true
	}
	require.Len(t, seen, 200)
}

// A presized keySet does not grow while it holds the keys it was sized
// for; reserve grows it once.
func TestKeySetPresized(t *testing.T) {
	var keys arena[[]byte]
	set := newKeySet(10000)
	size := len(set.slots)
	require.GreaterOrEqual(t, 3*size, 4*10000)
	for k := 0; k < 10000; k++ {
		key := []byte(fmt.Sprintf("key-%d", k))
		r, tag := set.find(&keys, key)
		require.Equal(t, -1, r)
		keys.add(key)
		set.insert(k, tag)
	}
	require.Equal(t, size, len(set.slots), "no growth")
	set.reserve(100000)
	require.GreaterOrEqual(t, 3*len(set.slots), 4*100000)
	for k := 0; k < 10000; k++ {
		r, _ := set.find(&keys, []byte(fmt.Sprintf("key-%d", k)))
		require.Equal(t, k, r, "found after reserve")
	}
}
