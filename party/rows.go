package party

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

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

// csvSource reads CSV with a header line, as encoding/csv does with its
// defaults (comma separator, no comments, strict quotes, the header's field
// count for every row). A line wholly in the buffer whose fields all end on
// it, quoted or not, is split here (the common case of an export), its
// fields slices of one copy of its text. Any other line (a quoted field
// running over lines, a quote fault, a line longer than the buffer, the
// last line without a newline, a read error) is read by encoding/csv from
// the same buffered reader, so quoting, its errors and line numbers stay
// encoding/csv's; FuzzCSVSourceMatchesEncodingCSV holds the two to the
// same rows, lines and errors.
type csvSource struct {
	br     *bufio.Reader
	r      *csv.Reader // reads the header and the lines the fast path hands over
	fields int         // the header's field count
	line   int         // the line where the row returned last starts
	// fastLines and fastBytes count what the fast path consumed (the csv
	// reader counts the rest), for line numbers and the input offset.
	fastLines int
	fastBytes int64
	csvLines  int // lines the csv reader consumed through its last record
	row       []string
	// splitEscaped's field bounds and unescaped text.
	starts, ends []int
	buf          []byte
	block        textBlock // the rows' text
	valid        bool      // the row returned last is valid UTF-8 throughout
}

// csvBufferSize is the buffered reader's size: lines up to this long take
// the fast path.
const csvBufferSize = 64 << 10

func newCSVSource(in io.Reader) *csvSource {
	br := bufio.NewReaderSize(in, csvBufferSize)
	cr := csv.NewReader(br) // reads br itself: bufio.NewReader returns it
	cr.ReuseRecord = true
	cr.FieldsPerRecord = 0
	return &csvSource{br: br, r: cr}
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
	s.fields = len(header)
	s.csvRead(header)
	return header, nil
}

func (s *csvSource) Next() ([]string, error) {
	for {
		line, ok := s.peekLine()
		if !ok {
			return s.nextCSV()
		}
		rec := line[:len(line)-1] // the newline; \r\n counts as \n
		if n := len(rec); n > 0 && rec[n-1] == '\r' {
			rec = rec[:n-1]
		}
		fields, ok := s.split(rec)
		if !ok {
			return s.nextCSV() // a field continues on the next line, or a quote fault
		}
		_, _ = s.br.Discard(len(line))
		s.fastLines++
		s.fastBytes += int64(len(line))
		if len(rec) == 0 {
			continue // encoding/csv skips empty lines
		}
		s.line = s.fastLines + s.csvLines
		if fields != s.fields {
			return nil, &RowError{Line: s.line, Err: csv.ErrFieldCount}
		}
		s.valid = utf8.Valid(rec)
		return s.row, nil
	}
}

// split splits one line (without its newline) into fields as encoding/csv
// does, into s.row, and returns their number; false when encoding/csv must
// read the line: a quoted field that does not end on it, or a quote out of
// place (a fault encoding/csv reports). Fields are slices of the line's
// text copied once into s.block, quoted ones without their quotes, unless a
// quoted field holds an escaped quote ("").
func (s *csvSource) split(line []byte) (int, bool) {
	s.row = s.row[:0]
	str := s.block.text(line) // a line encoding/csv reads leaves it unused
	q := nextQuote(line, 0)   // never before pos
	for pos := 0; ; {
		if q == pos && pos < len(line) {
			// A quoted field: its text runs to the next quote.
			end := nextQuote(line, pos+1)
			if end == len(line) {
				return 0, false // the field goes on past the line, or never ends
			}
			if end+1 < len(line) && line[end+1] == '"' {
				return s.splitEscaped(line) // "" is one quote: unescape
			}
			s.row = append(s.row, str[pos+1:end])
			pos = end + 1
			if pos == len(line) {
				break
			}
			if line[pos] != ',' {
				return 0, false // text after the closing quote
			}
			pos++
			q = nextQuote(line, pos)
			continue
		}
		end := len(line)
		if i := bytes.IndexByte(line[pos:], ','); i >= 0 {
			end = pos + i
		}
		if q < end {
			return 0, false // a bare quote
		}
		s.row = append(s.row, str[pos:end])
		if end == len(line) {
			break
		}
		pos = end + 1
	}
	return len(s.row), true
}

// nextQuote is the index of the first quote in line at or after from, or
// len(line).
func nextQuote(line []byte, from int) int {
	if i := bytes.IndexByte(line[from:], '"'); i >= 0 {
		return from + i
	}
	return len(line)
}

// splitEscaped is split for a line with an escaped quote: the fields'
// text, unescaped, back to back in s.buf, then in s.block.
func (s *csvSource) splitEscaped(line []byte) (int, bool) {
	s.starts, s.ends = s.starts[:0], s.ends[:0]
	// Quoted fields: their text, unescaped, back to back in s.buf.
	buf := s.buf[:0]
	for {
		start := len(buf)
		if len(line) == 0 || line[0] != '"' {
			f, rest, more := bytes.Cut(line, comma)
			if bytes.IndexByte(f, '"') >= 0 {
				return 0, false // a bare quote
			}
			buf = append(buf, f...)
			s.starts, s.ends = append(s.starts, start), append(s.ends, len(buf))
			if !more {
				break
			}
			line = rest
			continue
		}
		line = line[1:]
		for {
			i := bytes.IndexByte(line, '"')
			if i < 0 {
				return 0, false // the field goes on past the line, or never ends
			}
			buf = append(buf, line[:i]...)
			line = line[i+1:]
			if len(line) == 0 || line[0] != '"' {
				break
			}
			buf = append(buf, '"') // "" is one quote
			line = line[1:]
		}
		s.starts, s.ends = append(s.starts, start), append(s.ends, len(buf))
		if len(line) == 0 {
			break
		}
		if line[0] != ',' {
			return 0, false // text after the closing quote
		}
		line = line[1:]
		if len(line) == 0 {
			// A comma ends the line: one more, empty field.
			s.starts, s.ends = append(s.starts, len(buf)), append(s.ends, len(buf))
			break
		}
	}
	s.buf = buf
	str := s.block.text(buf)
	s.row = s.row[:0]
	for i, end := range s.ends {
		s.row = append(s.row, str[s.starts[i]:end])
	}
	return len(s.row), true
}

// textBlockSize is the size of a textBlock's blocks.
const textBlockSize = 64 << 10

// A textBlock turns bytes into strings by copying them into a block
// shared by many strings: one allocation for many rows rather than one a
// string. A full block is left to the strings that use it (they never
// change) and a new one begun. The zero value is ready to use.
type textBlock struct {
	b strings.Builder
}

// text returns b as a string.
func (t *textBlock) text(b []byte) string {
	if t.b.Cap()-t.b.Len() < len(b) {
		t.b = strings.Builder{}
		t.b.Grow(max(textBlockSize, len(b)))
	}
	start := t.b.Len()
	t.b.Write(b)
	return t.b.String()[start:]
}

var comma = []byte{','}

func (s *csvSource) Pos() Pos { return Pos{Line: s.line} }

func (s *csvSource) validUTF8() bool { return s.valid }

// peekLine returns the next line, through its newline, without consuming
// it; false when it is not wholly in the buffer after a fill (longer than
// the buffer, the last line without a newline, or a read error).
func (s *csvSource) peekLine() ([]byte, bool) {
	for filled := false; ; filled = true {
		buf, _ := s.br.Peek(s.br.Buffered())
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			return buf[:i+1], true
		}
		if filled || len(buf) == s.br.Size() {
			return nil, false
		}
		if _, err := s.br.Peek(len(buf) + 1); err != nil {
			return nil, false
		}
	}
}

// csvRead notes the lines the csv reader consumed for a record it read
// (with or without a wrong field count): from the line where the record
// starts (blank lines skipped before it counted), one more per newline in
// its quoted fields.
func (s *csvSource) csvRead(row []string) {
	if len(row) == 0 {
		return
	}
	s.csvLines, _ = s.r.FieldPos(0)
	for _, f := range row {
		s.csvLines += strings.Count(f, "\n")
	}
}

// nextCSV reads the next record with encoding/csv.
func (s *csvSource) nextCSV() ([]string, error) {
	row, err := s.r.Read()
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		var pe *csv.ParseError
		if !errors.As(err, &pe) {
			return nil, fmt.Errorf("%w: %v", ErrRecords, err)
		}
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			s.csvRead(row) // a whole record, returned with the error
		} else {
			s.csvLines = pe.Line // a quote fault: read through that line
		}
		pe.StartLine += s.fastLines
		pe.Line += s.fastLines
		return nil, csvRowError(pe)
	}
	s.csvRead(row)
	s.line, _ = s.r.FieldPos(0)
	s.line += s.fastLines
	s.valid = false // check the columns read, one by one
	return row, nil
}

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
