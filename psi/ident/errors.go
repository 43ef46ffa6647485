package ident

import (
	"errors"
	"fmt"
)

// Sentinel errors. Check them with [errors.Is]; the functions of this
// package wrap them with detail. None of them carries a name, identifier
// or sex value; date and layout errors quote the offending text (see the
// package documentation, "Secrets"). The caller adds the file, line and
// field.
var (
	// ErrEmpty reports a value that is empty after normalisation (for
	// example "", "  " or "--" as a name). Report the row; a caller that
	// wants to treat missing values specially (say, missing sex as "U")
	// must do so explicitly.
	ErrEmpty = errors.New("ident: empty value")

	// ErrInvalidUTF8 reports input that is not valid UTF-8. Report the
	// row; the export is probably in a legacy encoding (Latin-1, GB 18030)
	// and must be converted before loading.
	ErrInvalidUTF8 = errors.New("ident: invalid UTF-8")

	// ErrBadDate reports a date that does not match its [Layout] or is
	// not a real calendar date in [MinYear]..[MaxYear]. Report the row.
	ErrBadDate = errors.New("ident: bad date")

	// ErrBadLayout reports a date layout that [ParseLayout] cannot accept.
	// Fix the mapping file.
	ErrBadLayout = errors.New("ident: bad date layout")

	// ErrBadSex reports a sex code that [NormalizeSex] does not know.
	// Report the row, or map the hospital's codes before loading.
	ErrBadSex = errors.New("ident: unrecognised sex code")

	// ErrAmbiguousSex reports a sex code that means different sexes in
	// different code lists (the letters h, v and d; see [NormalizeSex]).
	// errors.Is(err, ErrBadSex) holds too. Declare what the export's
	// codes mean ([NewSexCodes]; a mapping's sex_codes) rather than skip
	// such rows: the other rows of the same file may be misread too.
	ErrAmbiguousSex = fmt.Errorf("%w: ambiguous", ErrBadSex)

	// ErrBadType reports a field type that [ParseType] does not know.
	// Fix the session spec.
	ErrBadType = errors.New("ident: unknown field type")

	// ErrBadTransform reports a match-key transform that
	// [ParseTransform] does not know, or one applied to a value that is not
	// the normal form it expects. Fix the session spec.
	ErrBadTransform = errors.New("ident: bad transform")

	// ErrNotMatchable reports a field type that is valid but cannot be a
	// match field ([Type.Matchable] is false). Fix the session spec.
	ErrNotMatchable = errors.New("ident: field type cannot be a match field")

	// ErrMalformedKey reports bytes that [DecodeKey] rejects. Treat the
	// input as corrupt; never retry.
	ErrMalformedKey = errors.New("ident: malformed key")
)
