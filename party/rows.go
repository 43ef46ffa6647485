package party

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mpsi-dev/mpsi/psi/ident"
)

// A RowSource is a stream of rows with named columns: the one shape every
// input (CSV, FHIR NDJSON, SQL) is read into before [ReadRows] maps,
// normalises and checks it.
type RowSource interface {
	// Columns returns the column names. It is called once, before Next.
	Columns() ([]string, error)
	// Next returns the next row, one value per column ("" for an absent
	// value), valid until the following call; io.EOF at the end. A
	// *RowError rejects that one row (the load fails unless
	// [LoadOptions.SkipBadRows]); any other error fails the load.
	Next() ([]string, error)
	// Pos names the row Next returned last, for error messages.
	Pos() Pos
}

// A ColumnChecker is a [RowSource] that checks, before the first row, the
// columns a load reads: a typed source (SQL) refuses a column whose type
// cannot hold its field, or one that no field reads.
type ColumnChecker interface {
	CheckColumns(use []ColumnUse) error
}

// ColumnUse is a column a load reads and what for.
type ColumnUse struct {
	Field     string     // logical field, or [RecordIDField]
	Type      ident.Type // the field's type; "" for record_id
	Column    int        // index in Columns
	Name      string     // column name
	Match     bool       // a match field (an empty value leaves the row out)
	Format    string     // the mapping's date format, "" for YYYY-MM-DD
	Separator string     // the separator a codes field is split on
	// Unread marks the column of a spec field that this party does not
	// read (it contributes to no aggregate over it): a source may leave
	// its values empty.
	Unread bool
}

// Pos names a row in its input.
type Pos struct {
	File string // the input file, where a source reads several
	Line int    // 1-based line (CSV counts the header) or row number
	Unit string // what Line counts: "" or "line", or "row"
	Ref  string // the resource, e.g. "Patient/123", where the input has ids
}

// String renders p as "[file: ]line N[ (ref)]".
func (p Pos) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		b.WriteString(": ")
	}
	unit := p.Unit
	if unit == "" {
		unit = "line"
	}
	fmt.Fprintf(&b, "%s %d", unit, p.Line)
	if p.Ref != "" {
		fmt.Fprintf(&b, " (%s)", p.Ref)
	}
	return b.String()
}

// csvSource reads CSV with a header line.
type csvSource struct {
	r    *csv.Reader
	line int
}

func newCSVSource(in io.Reader) *csvSource {
	cr := csv.NewReader(in)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = 0
	return &csvSource{r: cr}
}

func (s *csvSource) Columns() ([]string, error) {
	header, err := s.r.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%w: empty file, expected a header line", ErrRecords)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRecords, err)
	}
	return header, nil
}

func (s *csvSource) Next() ([]string, error) {
	row, err := s.r.Read()
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		var pe *csv.ParseError
		if !errors.As(err, &pe) {
			return nil, fmt.Errorf("%w: %v", ErrRecords, err)
		}
		if !errors.Is(pe.Err, csv.ErrFieldCount) {
			return nil, fmt.Errorf("%w: line %d: %v", ErrRecords, pe.Line, pe.Err)
		}
		return nil, &RowError{Line: pe.Line, Err: err}
	}
	s.line, _ = s.r.FieldPos(0)
	return row, nil
}

func (s *csvSource) Pos() Pos { return Pos{Line: s.line} }
