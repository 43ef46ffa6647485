package party_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/psi/session"
)

const clkRecordsSpec = `{"id":"c","parties":["a","b"],"match":{"mode":"clk","threshold":0.8,"schema":
{"version":3,"clkConfig":{"l":1024,"kdf":{"type":"HKDF","hash":"SHA256","keySize":64}},
"features":[{"identifier":"id","ignored":true},
{"identifier":"givenname","format":{"type":"string","encoding":"utf-8"},"hashing":{"hash":{"type":"doubleHash"},"strategy":{"bitsPerToken":20},"comparison":{"type":"ngram","n":2}}},
{"identifier":"age","format":{"type":"integer"},"hashing":{"hash":{"type":"doubleHash"},"strategy":{"bitsPerToken":20},"comparison":{"type":"ngram","n":1,"positional":true}}}]}},
"reveal":["cardinality"]}`

// In mode clk the loader keeps each feature's value as read (the CLK
// encoder's input), checks values against the schema as they load, and
// names the feature of a bad value, never the value.
func TestReadCSVCLK(t *testing.T) {
	spec, err := session.ParseSpec([]byte(clkRecordsSpec))
	require.NoError(t, err)
	csv := "id,givenname,age,other\n7,Tara ,41,x\n8,sam,abc,y\n9,,,z\n"
	_, err = party.ReadCSV(strings.NewReader(csv), spec, "a", party.LoadOptions{})
	require.ErrorIs(t, err, party.ErrRecords)
	require.ErrorContains(t, err, "line 3")
	require.ErrorContains(t, err, "age")
	require.NotContains(t, err.Error(), "abc", "the value stays out of the error")

	recs, err := party.ReadCSV(strings.NewReader(csv), spec, "a", party.LoadOptions{SkipBadRows: true})
	require.NoError(t, err)
	require.Equal(t, 1, recs.Len())
	assert.Equal(t, 1, recs.Report.Rejected)
	assert.Equal(t, 1, recs.Report.EmptyIdentifier, "a row with every feature empty")
	assert.Equal(t, []string{"", "Tara ", "41"}, recs.CLKRecord(0), "values as read; the ignored id as empty")

	// A feature without its column is named.
	_, err = party.ReadCSV(strings.NewReader("id,givenname\n1,x\n"), spec, "a", party.LoadOptions{})
	require.Error(t, err)
	require.True(t, errors.Is(err, party.ErrRecords))
	require.ErrorContains(t, err, `no column "age"`)
}

// A feature the spec declares as a typed field is normalised before
// encoding (hospitals' spellings and date layouts then agree); the others
// go as read.
func TestReadCSVCLKTypedFeature(t *testing.T) {
	js := strings.Replace(clkRecordsSpec, `"match":`, `"fields":{"givenname":"name"},"match":`, 1)
	spec, err := session.ParseSpec([]byte(js))
	require.NoError(t, err)
	recs, err := party.ReadCSV(strings.NewReader("id,givenname,age\n7,  TÁRA-Lee ,41\n8,,42\n"), spec, "a", party.LoadOptions{})
	require.NoError(t, err)
	require.Equal(t, 2, recs.Len())
	assert.Equal(t, []string{"", "tara lee", "41"}, recs.CLKRecord(0))
	assert.Equal(t, []string{"", "", "42"}, recs.CLKRecord(1), "an empty name is the empty value (the schema's missing value)")
}
