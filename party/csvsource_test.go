package party

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

// csvEvents reads a whole input as a RowSource and lists what it returned:
// each row with its line, each error, and the end.
func csvEvents(src RowSource) []string {
	var out []string
	header, err := src.Columns()
	if err != nil {
		return append(out, "columns error: "+err.Error())
	}
	out = append(out, fmt.Sprintf("header %q", header))
	for len(out) < 10_000 {
		row, err := src.Next()
		var re *RowError
		switch {
		case err == io.EOF:
			return append(out, "EOF")
		case errors.As(err, &re):
			out = append(out, "row error: "+re.Error())
		case err != nil:
			return append(out, "error: "+err.Error())
		default:
			out = append(out, fmt.Sprintf("%s: %q", src.Pos(), row))
		}
	}
	return out
}

// refCSVSource is the RowSource over encoding/csv alone, as it was before
// the fast path: the reference the fast path must reproduce.
type refCSVSource struct {
	r    *csv.Reader
	line int
}

func (s *refCSVSource) Columns() ([]string, error) {
	header, err := s.r.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%w: empty file, expected a header line", ErrRecords)
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		start, fault := csvFault(pe)
		return nil, fmt.Errorf("%w: header: line %d: %w", ErrRecords, start, fault)
	}
	return header, err
}

func (s *refCSVSource) Next() ([]string, error) {
	row, err := s.r.Read()
	if err == io.EOF {
		return nil, io.EOF
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return nil, csvRowError(pe)
	}
	if err != nil {
		return nil, err
	}
	s.line, _ = s.r.FieldPos(0)
	return row, nil
}

func (s *refCSVSource) Pos() Pos { return Pos{Line: s.line} }

func newRefCSVSource(in io.Reader) *refCSVSource {
	r := csv.NewReader(in)
	r.ReuseRecord = true
	return &refCSVSource{r: r}
}

var csvSourceCases = map[string]string{
	"plain":                   "a,b,c\n1,2,3\n4,5,6\n",
	"crlf":                    "a,b,c\r\n1,2,3\r\n4,5,6\r\n",
	"no final newline":        "a,b,c\n1,2,3\n4,5,6",
	"final cr":                "a,b,c\n1,2,3\r",
	"blank lines":             "a,b,c\n\n1,2,3\n\r\n\n4,5,6\n\n",
	"lone cr inside":          "a,b,c\n1,2\r,3\n\r4,5,6\n",
	"empty fields":            "a,b,c\n,,\n, ,\n",
	"quoted":                  "a,b,c\n\"1\",\"2,x\",3\n4,5,6\n",
	"escaped quotes":          "a,b,c\n\"x\"\"y\",\"\"\"\",\"\"\n",
	"quoted then comma":       "a,b\n\"x\",\n\"\",\"\"\n,\"y\"\n",
	"quoted crlf end":         "a\r\n\"x\"\r\n\"\"\r\n",
	"text after quote":        "a,b\n\"x\"y,1\n\"x\" ,1\n2,3\n",
	"quote after text":        "a,b\nx\"y\",1\n2,3\n",
	"lone quote line":         "a\n\"\n1\n",
	"leading space quote":     "a,b\n \"x\",1\n2,3\n",
	"quoted comma count":      "a,b\n\"1,2\",\"3,4\",5\n\"1,2\"\n",
	"quoted cr inside":        "a,b\n\"x\ry\",1\n",
	"quoted newline":          "a,b,c\n\"1\nx\",2,3\n4,5,6\n7,8\n",
	"quoted crlf":             "a,b,c\r\n\"1\r\nx\r\ny\",2,3\r\n4,5,6\r\n",
	"wrong field count":       "a,b,c\n1,2\n1,2,3,4\n4,5,6\n",
	"count after multi-line":  "a,b,c\n\"x\ny\",2\n4,5,6\n",
	"bare quote":              "a,b,c\n1,2\"x,3\n4,5,6\n",
	"bad quote":               "a,b,c\n\"1\"x,2,3\n4,5,6\n",
	"unterminated quote":      "a,b,c\n1,2,3\n\"4,5,6\n7,8,9\n",
	"quoted header":           "\"a\",\"b\nc\",d\n1,2,3\n",
	"bom":                     "\ufeffa,b\n1,2\n",
	"invalid utf-8":           "a,b\n\xff,2\n1,\xfe\n",
	"one column":              "a\n1\n\n2\n",
	"empty":                   "",
	"header only":             "a,b\n",
	"only blank lines":        "\n\n\n",
	"header then field count": "a,b\n1,2,3\n",
	"long line":               "a,b\n" + strings.Repeat("x", csvBufferSize+10) + ",1\n2,3\n",
	"long quoted line":        "a,b\n\"" + strings.Repeat("x", csvBufferSize+10) + "\",1\n2,3\n",
}

func requireSameCSVEvents(t *testing.T, in string) {
	t.Helper()
	want := csvEvents(newRefCSVSource(strings.NewReader(in)))
	require.Equal(t, want, csvEvents(newCSVSource(strings.NewReader(in))), "fast path")
	// Reads of one byte at a time: every line straddles a fill.
	require.Equal(t, want, csvEvents(newCSVSource(iotest.OneByteReader(strings.NewReader(in)))), "one byte reads")
}

// The fast path returns the rows, lines and errors encoding/csv does.
func TestCSVSourceMatchesEncodingCSV(t *testing.T) {
	for name, in := range csvSourceCases {
		t.Run(name, func(t *testing.T) { requireSameCSVEvents(t, in) })
	}
}

// A row's UTF-8 flag is true only when the whole row is valid UTF-8.
func TestCSVSourceValidUTF8(t *testing.T) {
	src := newCSVSource(strings.NewReader("a,b\n1,2\n\xff,2\n\"q\xff\",2\n\"q\",2\n\"q\nr\",2\n"))
	_, err := src.Columns()
	require.NoError(t, err)
	// A row read by encoding/csv (a field over two lines) is checked
	// column by column.
	for _, want := range []bool{true, false, false, true, false} {
		_, err := src.Next()
		require.NoError(t, err)
		require.Equal(t, want, src.validUTF8())
	}
}

// The input offset counts the bytes both paths consumed.
func TestCSVSourceInputOffset(t *testing.T) {
	in := "a,b\n1,2\n\"3\",4\n5,6\n"
	src := &sizedCSVSource{newCSVSource(strings.NewReader(in)), int64(len(in))}
	_, err := src.Columns()
	require.NoError(t, err)
	for range 3 {
		_, err := src.Next()
		require.NoError(t, err)
	}
	require.Equal(t, int64(len(in)), src.r.InputOffset()+src.fastBytes)
	require.Equal(t, 3*9/8, src.estimateRows(3))
}

func FuzzCSVSourceMatchesEncodingCSV(f *testing.F) {
	for _, in := range csvSourceCases {
		if len(in) < 1000 {
			f.Add(in)
		}
	}
	f.Fuzz(func(t *testing.T, in string) {
		want := csvEvents(newRefCSVSource(strings.NewReader(in)))
		got := csvEvents(newCSVSource(bytes.NewReader([]byte(in))))
		require.Equal(t, want, got)
	})
}
