package party

import (
	"encoding/csv"
	"errors"
	"fmt"

	"github.com/mpsi-dev/mpsi/psi/ident"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// valueFree is an error whose text names no value of a record (a column
// number and header, say), so that [RowError.Summary] may show it.
type valueFree string

func (e valueFree) Error() string { return string(e) }

// Summary renders e without anything that could quote the row's values:
// where the row is, the field, and what kind of fault it has
// ("line 5: field age: aggregate "age": outside [min, max]"). Error may
// quote a value (a date that does not parse, a number out of range), which
// helps fix the export but must not go into a listing of skipped rows; a
// fault Summary cannot classify is "invalid value", and the full Error of
// the first bad row is what a load without SkipBadRows reports.
func (e *RowError) Summary() string {
	pos := Pos{File: e.File, Line: e.Line, Unit: e.Unit, Ref: e.Ref}
	if e.Field != "" {
		return fmt.Sprintf("%s: field %s: %s", pos, e.Field, faultKind(e.Err))
	}
	return fmt.Sprintf("%s: %s", pos, faultKind(e.Err))
}

// faultKind describes err without quoting any value.
func faultKind(err error) string {
	var vf valueFree
	var ve *session.ValueError
	switch {
	case errors.As(err, &vf):
		return vf.Error()
	case errors.As(err, &ve):
		what := "invalid value"
		for _, k := range []error{session.ErrNotNumber, session.ErrTooManyDecimals, session.ErrTooLarge, session.ErrOutOfRange} {
			if errors.Is(err, k) {
				what = k.Error()
				break
			}
		}
		return fmt.Sprintf("aggregate %q: %s", ve.Aggregate, what)
	case errors.Is(err, ident.ErrBadSex), errors.Is(err, ident.ErrEmpty), errors.Is(err, ident.ErrInvalidUTF8):
		// Constant texts that hold no input (psi/ident's "Secrets").
		return err.Error()
	case errors.Is(err, ident.ErrBadDate):
		return fmt.Sprintf("not a date in the column's format, or not a calendar date in %d..%d", ident.MinYear, ident.MaxYear)
	case errors.Is(err, csv.ErrFieldCount), errors.Is(err, csv.ErrQuote), errors.Is(err, csv.ErrBareQuote):
		// encoding/csv's texts, with line and column numbers (csvFault).
		return err.Error()
	}
	return "invalid value"
}
