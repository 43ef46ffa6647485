package party_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/psi/ident"
	"github.com/mpsi-dev/mpsi/psi/session"
)

const keysSpec = `{"id":"k","parties":["a","b"],
	"fields":{"ssn":"id","surname":"name","given":"name","dob":"date","visits":"number"},
	"match":{"keys":[["ssn"],["surname|soundex","given|initial","dob|year"],["surname","given","dob"]]},
	"reveal":["cardinality"]}`

// Loading for several match keys: each key is built from its (transformed)
// fields; an empty field leaves only the keys using it without a value; a
// value two records share is ambiguous for that key only; records equal
// on every key are one record; a row with no key at all is an empty
// identifier.
func TestReadCSVSeveralKeys(t *testing.T) {
	spec, err := session.ParseSpec([]byte(keysSpec))
	require.NoError(t, err)
	csv := strings.Join([]string{
		"record_id,ssn,surname,given,dob",
		"r1,123-45-6789,Smith,Peter,1980-02-03",
		"r2,,Smyth,Jane,1980-05-06",             // no ssn; key 2 shared with r4 (s530 j 1980)
		"r3,987654321,Brown,Anna,1975-01-01",    // unique
		"r4,555,Smith,Julia,1980-07-08",         // key 2 = r2's
		"r5,123-45-6789,Smith,Peter,1980-02-03", // r1 again: a duplicate
		"r6,,,,",                                // nothing: empty identifier
		"r7,42,,,",                              // ssn only
	}, "\n")
	recs, err := party.ReadCSV(strings.NewReader(csv), spec, "a", party.LoadOptions{})
	require.NoError(t, err)
	require.Equal(t, 5, recs.Len())
	assert.Equal(t, 3, recs.Keys())
	assert.Equal(t, 1, recs.Report.Duplicates)
	assert.Equal(t, 1, recs.Report.EmptyIdentifier)
	assert.Equal(t, []int{1, 1, 1}, recs.Report.MissingKey, "r2 lacks the ssn, r7 the names")
	assert.Equal(t, []int{0, 2, 0}, recs.Report.AmbiguousKey, "r2 and r4 share key 2")

	byID := map[string]int{}
	for i := range recs.Len() {
		byID[recs.ID(i)] = i
	}
	key := func(id string, k int) []ident.Field {
		b := recs.KeyAt(k, byID[id])
		if b == nil {
			return nil
		}
		f, err := ident.DecodeKey(b)
		require.NoError(t, err)
		return f
	}
	assert.Equal(t, []ident.Field{{Name: "ssn", Value: "123456789"}}, key("r1", 0))
	assert.Equal(t, []ident.Field{{Name: "surname|soundex", Value: "s530"}, {Name: "given|initial", Value: "p"}, {Name: "dob|year", Value: "1980"}}, key("r1", 1))
	assert.Equal(t, []ident.Field{{Name: "surname", Value: "smith"}, {Name: "given", Value: "peter"}, {Name: "dob", Value: "1980-02-03"}}, key("r1", 2))
	assert.Nil(t, key("r2", 0), "no ssn")
	assert.Nil(t, key("r2", 1), "ambiguous with r4")
	assert.Nil(t, key("r4", 1), "ambiguous with r2")
	assert.NotNil(t, key("r2", 2))
	assert.NotNil(t, key("r7", 0))
	assert.Nil(t, key("r7", 1))
	assert.Nil(t, recs.KeyAt(3, 0), "no such key")
}

// With match.fields the keys are the one-key keys of before: KeyAt(0, i)
// is Key(i) and the Report has no per-key counts.
func TestReadCSVOneKeyUnchanged(t *testing.T) {
	spec, err := session.ParseSpec([]byte(`{"id":"k","parties":["a","b"],"fields":{"ssn":"id","surname":"name"},
	"match":{"fields":["surname","ssn"]},"reveal":["cardinality"]}`))
	require.NoError(t, err)
	recs, err := party.ReadCSV(strings.NewReader("surname,ssn\nSmith,1\nBrown,\n"), spec, "a", party.LoadOptions{})
	require.NoError(t, err)
	require.Equal(t, 1, recs.Len())
	assert.Equal(t, 1, recs.Report.EmptyIdentifier)
	assert.Nil(t, recs.Report.MissingKey)
	want := ident.AppendKey(nil, []ident.Field{{Name: "surname", Value: "smith"}, {Name: "ssn", Value: "1"}})
	assert.Equal(t, want, recs.Key(0))
	assert.Equal(t, want, recs.KeyAt(0, 0))
}
