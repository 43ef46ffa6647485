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
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			start, fault := csvFault(pe)
			return nil, fmt.Errorf("%w: header: line %d: %w", ErrRecords, start, fault)
		}
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
		return nil, csvRowError(pe)
	}
	s.line, _ = s.r.FieldPos(0)
	return row, nil
}

func (s *csvSource) Pos() Pos { return Pos{Line: s.line} }

// csvRowError turns a CSV parse error into a row error at the line where
// the record starts ([csvFault]). A wrong field count, or a quote fault
// within one line, is a *RowError: the reader resumes at the next line, so
// [LoadOptions.SkipBadRows] may reject the row. A quote fault in a record
// that spans lines is fatal (an error wrapping ErrRecords, not a
// *RowError): where the next row begins is then unknown (an unterminated
// quote runs to the end of the file), and skipping could swallow good rows
// into the bad one. Neither quotes the record's text.
func csvRowError(pe *csv.ParseError) error {
	start, fault := csvFault(pe)
	if errors.Is(pe.Err, csv.ErrFieldCount) || pe.Line == start {
		return &RowError{Line: start, Err: fault}
	}
	return fmt.Errorf("%w: line %d: %w", ErrRecords, start, fault)
}

// csvFault returns the line where pe's record starts and the fault,
// naming the line and column where it was found when that is another line
// (a quoted field may span lines; encoding/csv's Line is where the fault
// was found, for an unterminated quote the end of the file).
func csvFault(pe *csv.ParseError) (int, error) {
	start := pe.StartLine
	if start <= 0 {
		start = pe.Line
	}
	if pe.Line != start {
		return start, fmt.Errorf("%w (in the record starting on this line; found on line %d, column %d)", pe.Err, pe.Line, pe.Column)
	}
	return start, pe.Err
}
