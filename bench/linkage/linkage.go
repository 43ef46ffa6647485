// Package linkage measures how well mpsi's ordered multi-key linkage
// (package psi/link) finds the patients parties truly share, on data whose
// true groups are known: cohorts of bench/cohort with Config.Realistic
// (truth_groups.csv) and the anonlink five-party set (whose id column is
// the true entity).
//
// The outcome of a session's linkage is a function of the parties' match
// keys alone (the protocol maps equal keys to equal tokens and different
// keys to different ones), so it is evaluated here on plaintext: each
// party's keys, tokens = SHA-256 of the key bytes, then [link.Group] as the
// coordinator runs it, compared with the truth:
//
//   - recall = true all-party patients found as one complete group / true
//     all-party patients (those with a record at every party);
//   - precision = complete groups whose records are all one patient /
//     complete groups.
//
// [LoadCohortRecords] takes the keys from the parties' own loader
// (party.LoadCSV, party.Records.KeyAt). [ReadCSV], [LoadCohort] and
// [LoadAnonlink] build them the same way here (a test checks they agree)
// for data the parties' loader would refuse, such as the anonlink files'
// invalid values: each field normalised by psi/ident for its type, its
// transform applied (ident.Transform), the fields encoded by
// ident.AppendKey; a record without a value for a field of the key (empty
// or invalid) has no value for the key, and a value shared by two of a
// party's records is withdrawn from both (a party never sends a repeated
// token).
//
// This package reads patient identifiers in clear: it is a benchmark tool
// for synthetic and public test data, never for real patients. Its errors
// name files, lines and fields, never values.
package linkage

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/mpsi-dev/mpsi/psi/ident"
	"github.com/mpsi-dev/mpsi/psi/join"
	"github.com/mpsi-dev/mpsi/psi/link"
)

// Source is one party's records as match keys: [Table] here, and the
// parties' own records (party.Records) have the same methods.
type Source interface {
	// Len is the number of records.
	Len() int
	// Keys is the number of match keys.
	Keys() int
	// KeyAt is record i's key k, nil when it has none.
	KeyAt(k, i int) []byte
}

// ErrShape is wrapped by errors about sources or truth of the wrong shape.
var ErrShape = errors.New("linkage: inputs of the wrong shape")

// Tokens returns the token lists [link.Group] takes, lists[k][p][i]:
// SHA-256 of party p's key k of record i. A record without a value for a
// key gets a token of its own that no other record's can equal (its
// position, tagged so it is no key's digest).
func Tokens(parties []Source) ([][][]join.Token, error) {
	if len(parties) == 0 {
		return nil, fmt.Errorf("%w: no party", ErrShape)
	}
	keys := parties[0].Keys()
	lists := make([][][]join.Token, keys)
	for k := range keys {
		lists[k] = make([][]join.Token, len(parties))
		for p, s := range parties {
			if s.Keys() != keys {
				return nil, fmt.Errorf("%w: party %d has %d keys, party 0 %d", ErrShape, p, s.Keys(), keys)
			}
			l := make([]join.Token, s.Len())
			for i := range l {
				if key := s.KeyAt(k, i); key != nil {
					l[i] = sha256.Sum256(key)
					continue
				}
				// A digest of 32 bytes cannot be predicted to start with
				// 24 zero bytes: this token equals no key's.
				l[i][24], l[i][25], l[i][26] = byte(p), byte(p>>8), byte(k)
				l[i][28], l[i][29], l[i][30], l[i][31] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
			}
			lists[k][p] = l
		}
	}
	return lists, nil
}

// Quality is linkage quality against the truth.
type Quality struct {
	// Entities is the number of true all-party patients: patients with a
	// record at every party.
	Entities int
	// Found is how many of them are one complete group.
	Found int
	// Complete is the number of complete groups (the intersection's size
	// as the session would report it).
	Complete int
	// Pure is the number of complete groups whose records are all one
	// patient.
	Pure int
	// Ambiguous and Completed are link.Result's.
	Ambiguous int
	Completed []int
}

// Recall is Found / Entities (1 when there is no all-party patient).
func (q Quality) Recall() float64 {
	if q.Entities == 0 {
		return 1
	}
	return float64(q.Found) / float64(q.Entities)
}

// Precision is Pure / Complete (1 when there is no complete group).
func (q Quality) Precision() float64 {
	if q.Complete == 0 {
		return 1
	}
	return float64(q.Pure) / float64(q.Complete)
}

// Score compares the groups of res (which must have been asked with
// link.Options{Groups: true}) with the truth: entity[p][i] is the patient
// of party p's record i, "" when unknown (such a record is never part of
// a pure group).
func Score(res *link.Result, entity [][]string) (Quality, error) {
	n := len(entity)
	q := Quality{Complete: res.Complete, Ambiguous: res.Ambiguous, Completed: res.Completed}
	if res.Complete > 0 && res.Groups == nil {
		return q, fmt.Errorf("%w: the result holds no groups (link.Options.Groups)", ErrShape)
	}
	// True all-party patients: present at every party.
	at := map[string]int{} // entity → parties seen, counting each party once
	for p := range entity {
		seen := map[string]bool{}
		for _, e := range entity[p] {
			if e != "" && !seen[e] {
				seen[e] = true
				at[e]++
			}
		}
	}
	for _, c := range at {
		if c == n {
			q.Entities++
		}
	}
	found := map[string]bool{}
	complete := 0
	for _, g := range res.Groups {
		if len(g) != n {
			continue // one-to-one: a group holds a record of every party exactly when it has n records
		}
		complete++
		e := ""
		pure := true
		for j, m := range g {
			if m.Party < 0 || m.Party >= n || int(m.Pos) >= len(entity[m.Party]) {
				return q, fmt.Errorf("%w: group member (party %d, position %d) outside the truth", ErrShape, m.Party, m.Pos)
			}
			x := entity[m.Party][m.Pos]
			if x == "" || (j > 0 && x != e) {
				pure = false
			}
			e = x
		}
		if pure {
			q.Pure++
			found[e] = true
		}
	}
	if complete != res.Complete {
		return q, fmt.Errorf("%w: %d groups of %d records, %d complete groups", ErrShape, complete, n, res.Complete)
	}
	q.Found = len(found)
	return q, nil
}

// Evaluate links the sources' keys as a session would and scores the
// outcome against entity (as [Score]).
func Evaluate(parties []Source, entity [][]string) (Quality, error) {
	if len(entity) != len(parties) {
		return Quality{}, fmt.Errorf("%w: %d parties, truth for %d", ErrShape, len(parties), len(entity))
	}
	for p, s := range parties {
		if len(entity[p]) != s.Len() {
			return Quality{}, fmt.Errorf("%w: party %d has %d records, truth for %d", ErrShape, p, s.Len(), len(entity[p]))
		}
	}
	lists, err := Tokens(parties)
	if err != nil {
		return Quality{}, err
	}
	res, err := link.Group(lists, link.Options{Groups: true})
	if err != nil {
		return Quality{}, err
	}
	return Score(res, entity)
}

// ParseKeys parses a spec's match keys ([["ssn"], ["family_name|soundex",
// ...]]); errors name the key and field as the spec does
// ("match.keys[2][0]: ...").
func ParseKeys(keys [][]string) ([][]ident.KeyField, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("linkage: match.keys: no key")
	}
	out := make([][]ident.KeyField, len(keys))
	for k, key := range keys {
		if len(key) == 0 {
			return nil, fmt.Errorf("linkage: match.keys[%d]: no field", k)
		}
		for f, s := range key {
			kf, err := ident.ParseKeyField(s)
			if err != nil {
				return nil, fmt.Errorf("linkage: match.keys[%d][%d]: %w", k, f, err)
			}
			out[k] = append(out[k], kf)
		}
	}
	return out, nil
}
