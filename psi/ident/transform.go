package ident

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// A Transform coarsens a normalised match field so that records agree
// despite the noise real identifiers carry: a misspelt surname still has
// the same [TransformSoundex] code, a birth date with day and month swapped
// the same [TransformDayMonthUnordered] form. A session's match keys name
// the transform of each field as `field|transform` (doc/DESIGN.md §3).
//
// Transforms apply to normal forms (the output of [Normalize]) and their
// outputs are part of the key, so, like normalisation, they are protocol:
// changing one changes [KeyVersion].
type Transform string

// The transforms. The zero Transform keeps the normal form unchanged.
const (
	// TransformNone keeps the normalised value.
	TransformNone Transform = ""
	// TransformSoundex codes each word of a name with American Soundex
	// (the National Archives' rules): the word's first letter, then three
	// digits for the following consonants, "robert" → "r163",
	// "tymczak" → "t522", "pfister" → "p236", "ashcraft" → "a261"; words
	// are coded separately and joined by a space ("van der berg" →
	// "v500 d600 b620"). Only the letters a–z are coded (accents were
	// removed by normalisation); other characters (digits, letters of
	// other scripts) are skipped like h and w, and a word holding no
	// letter a–z is kept as it is, so names in other scripts still match
	// exactly.
	TransformSoundex Transform = "soundex"
	// TransformInitial keeps the first letter of a name ("jose alvarez"
	// → "j"; "张伟" → "张").
	TransformInitial Transform = "initial"
	// TransformYear keeps the year of a date ("1984-03-07" → "1984").
	TransformYear Transform = "year"
	// TransformYearMonth keeps the year and month ("1984-03").
	TransformYearMonth Transform = "year_month"
	// TransformDayMonthUnordered writes a date with its month and day in
	// increasing order, so a date whose day and month were swapped
	// agrees with the original: "1984-03-07" and "1984-07-03" both give
	// "1984-03-07".
	TransformDayMonthUnordered Transform = "day_month_unordered"
	// TransformDigits keeps the digits 0–9 of an identifier
	// ("ab-123-45" → "12345"); an identifier without digits has no value.
	TransformDigits Transform = "digits"
	// TransformLast4 keeps the last four digits of an identifier
	// ("999-12-3456" → "3456"); fewer than four digits is no value.
	TransformLast4 Transform = "last4"
)

// transforms lists every named Transform with the field type it needs.
var transforms = []struct {
	t   Transform
	typ Type
}{
	{TransformSoundex, TypeName},
	{TransformInitial, TypeName},
	{TransformYear, TypeDate},
	{TransformYearMonth, TypeDate},
	{TransformDayMonthUnordered, TypeDate},
	{TransformDigits, TypeID},
	{TransformLast4, TypeID},
}

// ParseTransform returns the Transform named s; "" is [TransformNone]. An
// unknown name gives an error wrapping [ErrBadTransform] that quotes s.
func ParseTransform(s string) (Transform, error) {
	if s == "" {
		return TransformNone, nil
	}
	for _, e := range transforms {
		if string(e.t) == s {
			return e.t, nil
		}
	}
	return "", fmt.Errorf("%w %q", ErrBadTransform, truncate(s))
}

// Accepts reports whether t applies to fields of type typ: soundex and
// initial to names, year, year_month and day_month_unordered to dates,
// digits and last4 to identifiers; TransformNone to every matchable type.
func (t Transform) Accepts(typ Type) bool {
	if t == TransformNone {
		return typ.Matchable()
	}
	for _, e := range transforms {
		if e.t == t {
			return e.typ == typ
		}
	}
	return false
}

// Input is the field type a named transform applies to ("" for
// TransformNone and unknown transforms).
func (t Transform) Input() Type {
	for _, e := range transforms {
		if e.t == t {
			return e.typ
		}
	}
	return ""
}

// Append appends t applied to the normal form v to dst and returns the
// extended slice. v must be the output of [Normalize] for the type t
// accepts. When nothing is left (an identifier without digits, fewer than
// four for last4) it returns dst unchanged and an error wrapping
// [ErrEmpty]; a v that is not a normal form of the expected type gives
// one wrapping [ErrBadTransform]. Errors never quote v.
func (t Transform) Append(dst []byte, v string) ([]byte, error) {
	switch t {
	case TransformNone:
		return append(dst, v...), nil
	case TransformSoundex:
		return appendSoundex(dst, v), nil
	case TransformInitial:
		r, n := utf8.DecodeRuneInString(v)
		if n == 0 || r == utf8.RuneError && n == 1 {
			return dst, fmt.Errorf("%w: no initial", ErrEmpty)
		}
		return append(dst, v[:n]...), nil
	case TransformYear, TransformYearMonth, TransformDayMonthUnordered:
		if !isISODate(v) {
			return dst, fmt.Errorf("%w: %s needs a normalised date (YYYY-MM-DD)", ErrBadTransform, t)
		}
		switch t {
		case TransformYear:
			return append(dst, v[:4]...), nil
		case TransformYearMonth:
			return append(dst, v[:7]...), nil
		}
		m, d := v[5:7], v[8:10]
		if d < m {
			m, d = d, m
		}
		dst = append(dst, v[:5]...)
		dst = append(dst, m...)
		dst = append(dst, '-')
		return append(dst, d...), nil
	case TransformDigits, TransformLast4:
		start := len(dst)
		for i := 0; i < len(v); i++ {
			if isDigit(v[i]) {
				dst = append(dst, v[i])
			}
		}
		n := len(dst) - start
		if t == TransformLast4 {
			if n < 4 {
				return dst[:start], fmt.Errorf("%w: fewer than 4 digits", ErrEmpty)
			}
			copy(dst[start:], dst[len(dst)-4:])
			return dst[:start+4], nil
		}
		if n == 0 {
			return dst, fmt.Errorf("%w: no digits", ErrEmpty)
		}
		return dst, nil
	}
	return dst, fmt.Errorf("%w %q", ErrBadTransform, truncate(string(t)))
}

// isISODate reports whether v has the shape YYYY-MM-DD of a normalised
// date.
func isISODate(v string) bool {
	if len(v) != 10 || v[4] != '-' || v[7] != '-' {
		return false
	}
	for _, i := range []int{0, 1, 2, 3, 5, 6, 8, 9} {
		if !isDigit(v[i]) {
			return false
		}
	}
	return true
}

// soundexCode is the American Soundex digit of each letter a–z: 0 for the
// vowels and y (which separate equal codes), 'h' and 'w' marked by 'h'
// (which do not), as the National Archives' rules say.
var soundexCode = [26]byte{
	'0', '1', '2', '3', '0', '1', '2', 'h', '0', '2', '2', '4', '5',
	'5', '0', '1', '2', '6', '2', '3', '0', '1', 'h', '2', '0', '2',
}

// appendSoundex appends the Soundex code of every word of the normalised
// name v (words are separated by one space), joined by one space.
func appendSoundex(dst []byte, v string) []byte {
	for i, w := range strings.Split(v, " ") {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = appendSoundexWord(dst, w)
	}
	return dst
}

func appendSoundexWord(dst []byte, w string) []byte {
	start := len(dst)
	var last byte // code of the previous coded letter, 0 after a vowel
	n := 0        // digits written
	for i := 0; i < len(w); i++ {
		c := w[i]
		if c < 'a' || c > 'z' {
			continue // digits, other scripts: skipped like h and w
		}
		code := soundexCode[c-'a']
		if len(dst) == start {
			dst = append(dst, c)
			last = code
			continue
		}
		switch {
		case code == 'h':
			// h and w do not separate letters with the same code.
		case code == '0':
			last = 0
		case code != last:
			if n < 3 {
				dst = append(dst, code)
				n++
			}
			last = code
		}
	}
	if len(dst) == start {
		return append(dst, w...) // no letter a–z: keep the word
	}
	for ; n < 3; n++ {
		dst = append(dst, '0')
	}
	return dst
}

// KeySeparator separates a field from its transform in a match key field
// as written in the spec: "surname|soundex".
const KeySeparator = "|"

// KeyField is one field of a match key as the session spec writes it: a
// logical field and the transform applied to its normal form.
type KeyField struct {
	Field     string
	Transform Transform
}

// ParseKeyField parses "field" or "field|transform". Errors wrap
// [ErrBadTransform] (unknown transform, or an empty field or transform
// around the separator) and quote the text, which is spec text, not
// patient data.
func ParseKeyField(s string) (KeyField, error) {
	field, tr, found := strings.Cut(s, KeySeparator)
	if field == "" {
		return KeyField{}, fmt.Errorf("%w: %q has no field name", ErrBadTransform, truncate(s))
	}
	if !found {
		return KeyField{Field: field}, nil
	}
	if tr == "" {
		return KeyField{}, fmt.Errorf("%w: %q has an empty transform after %q", ErrBadTransform, truncate(s), KeySeparator)
	}
	t, err := ParseTransform(tr)
	if err != nil {
		return KeyField{}, err
	}
	return KeyField{Field: field, Transform: t}, nil
}

// String returns the field as written in the spec: "field" or
// "field|transform". It is also the name the field has inside the key
// ([AppendKeyField]), so keys of different transforms never agree.
func (f KeyField) String() string {
	if f.Transform == TransformNone {
		return f.Field
	}
	return f.Field + KeySeparator + string(f.Transform)
}
