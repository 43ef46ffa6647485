package session_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/mpsi-dev/mpsi/psi/session"
)

// manyPartySpec is a valid spec JSON with n parties and aggregates whose
// from defaults to every party, the shape that made validation quadratic.
func manyPartySpec(tb testing.TB, n int) []byte {
	tb.Helper()
	parties := make([]string, n)
	for i := range parties {
		parties[i] = fmt.Sprintf("hospital-%06d", i)
	}
	b, err := json.Marshal(map[string]any{
		"id":      "many-parties",
		"parties": parties,
		"fields":  map[string]string{"given_name": "name", "visits": "number"},
		"match":   map[string]any{"fields": []string{"given_name"}, "mode": "dh"},
		"reveal":  []string{"cardinality", "aggregates"},
		"aggregates": []map[string]any{
			{"name": "shared", "kind": "count"},
			{"name": "visits", "kind": "sum", "field": "visits", "min": 0, "max": 100},
		},
		"min_cell": 11,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkParseSpec100kParties parses, validates and lays out a spec with
// 100 000 parties and looks every party up once, as the coordinator does
// when each of them joins.
func BenchmarkParseSpec100kParties(b *testing.B) {
	const n = 100_000
	raw := manyPartySpec(b, n)
	b.ResetTimer()
	for b.Loop() {
		s, err := session.ParseSpec(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := session.NewLayout(s); err != nil {
			b.Fatal(err)
		}
		for i, p := range s.Parties {
			if s.PartyIndex(p) != i {
				b.Fatalf("PartyIndex(%s) != %d", p, i)
			}
		}
	}
}

func TestManyPartySpecIndex(t *testing.T) {
	s, err := session.ParseSpec(manyPartySpec(t, 1000))
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range s.Parties {
		if got := s.PartyIndex(p); got != i {
			t.Fatalf("PartyIndex(%s) = %d, want %d", p, got, i)
		}
	}
	if got := s.PartyIndex("hospital-x"); got != -1 {
		t.Fatalf("PartyIndex of a stranger = %d, want -1", got)
	}
	l, err := session.NewLayout(s)
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() != 3 {
		t.Fatalf("layout length %d, want 3", l.Len())
	}
}
