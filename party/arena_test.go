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
	set := newKeySet()
	for k := 0; k < 100000; k++ {
		key := []byte(fmt.Sprintf("key-%d", k))
		require.Equal(t, -1, set.find(&keys, key))
		keys.add(key)
		set.insert(&keys, k)
	}
	for k := 0; k < 100000; k++ {
		require.Equal(t, k, set.find(&keys, []byte(fmt.Sprintf("key-%d", k))))
	}
	require.Equal(t, -1, set.find(&keys, []byte("key-100000")))
	require.Equal(t, -1, set.find(&keys, nil))
	require.LessOrEqual(t, len(set.slots), 4*100000/3*2, "the table stays within twice its minimum size")
}
