package ident

import (
	"fmt"
	"strings"
)

// DefaultLayout is the ISO 8601 calendar date layout, the output form of
// [Layout.Normalize]. The zero [Layout] is this layout.
const DefaultLayout = "YYYY-MM-DD"

// The range of years [Layout.Normalize] accepts. Anything outside is
// taken for a data-entry error ("2972", "0000").
const (
	MinYear = 1800
	MaxYear = 2200
)

// maxLayoutLen bounds the length of a layout string.
const maxLayoutLen = 16

// elem is one element of a Layout.
type elem uint8

const (
	elemLit    elem = iota // one literal separator byte
	elemYear               // YYYY: exactly four digits
	elemMonth2             // MM: exactly two digits
	elemMonth              // M: one or two digits
	elemDay2               // DD: exactly two digits
	elemDay                // D: one or two digits
)

type part struct {
	elem elem
	lit  byte // the separator, for elemLit
}

// Layout is a parsed date layout, written with YYYY, MM and DD (or M and D
// for months and days with an optional leading zero) and separators, for
// example "MM/DD/YYYY", "DD.MM.YYYY", "YYYYMMDD", "YYYY-MM-DD",
// "DD-MM-YYYY" or "M/D/YYYY". See [ParseLayout].
//
// The zero Layout is [DefaultLayout], "YYYY-MM-DD", and [ParseLayout]
// returns the zero Layout for it, so Layouts compare with ==. A Layout is
// an immutable value, safe for concurrent use.
type Layout struct {
	parts [maxLayoutLen]part
	n     uint8 // 0: DefaultLayout
	// A layout without M or D has one width: fixed is it (0 otherwise),
	// shape[i] the separator at byte i (0 for a digit), and year, month
	// and day the offsets of the numbers. Derived from parts by
	// ParseLayout, so Layouts still compare with ==.
	fixed            uint8
	shape            [maxLayoutLen]byte
	year, month, day uint8
}

// ParseLayout parses a date layout. Each of YYYY, MM (or M) and DD (or D)
// appears exactly once; letters are case-insensitive ("yyyy-mm-dd" is
// "YYYY-MM-DD"). Separators are single ASCII punctuation characters or
// spaces (not at either end), matched literally. M and D, whose width
// varies, must be separated from the neighbouring number. A two-digit year
// (YY) is refused as ambiguous, as is anything else; the error wraps
// [ErrBadLayout] and quotes s.
func ParseLayout(s string) (Layout, error) {
	bad := func(why string) (Layout, error) {
		return Layout{}, fmt.Errorf("%w %q: %s", ErrBadLayout, truncate(s), why)
	}
	if len(s) > maxLayoutLen {
		return bad(fmt.Sprintf("longer than %d bytes", maxLayoutLen))
	}
	if strings.TrimSpace(s) != s {
		// Normalize trims its input, so these could never match.
		return bad("leading or trailing space")
	}
	var l Layout
	var seen [elemDay + 1]bool
	for i := 0; i < len(s); {
		c := upper(s[i])
		run := 1
		for i+run < len(s) && upper(s[i+run]) == c {
			run++
		}
		var e elem
		switch {
		case c == 'Y' && run == 4:
			e = elemYear
		case c == 'Y' && run == 2:
			return bad("two-digit year YY is ambiguous, use YYYY")
		case c == 'M' && run == 2:
			e = elemMonth2
		case c == 'M' && run == 1:
			e = elemMonth
		case c == 'D' && run == 2:
			e = elemDay2
		case c == 'D' && run == 1:
			e = elemDay
		case c == 'Y' || c == 'M' || c == 'D':
			return bad(fmt.Sprintf("%q is not YYYY, MM, M, DD or D", s[i:i+run]))
		case c == ' ' || (c > ' ' && c < 0x7f && !isAlnum(c)):
			e, run = elemLit, 1
		default:
			return bad(fmt.Sprintf("unexpected %q at byte %d (want YYYY, MM, DD and separators)", s[i], i))
		}
		if e != elemLit {
			k := e
			if k == elemMonth {
				k = elemMonth2
			} else if k == elemDay {
				k = elemDay2
			}
			if seen[k] {
				return bad(fmt.Sprintf("%s appears twice", elemName(k)))
			}
			seen[k] = true
			if l.n > 0 {
				prev := l.parts[l.n-1].elem
				if prev != elemLit && (isVariable(prev) || isVariable(e)) {
					return bad("M and D need a separator next to another number")
				}
			}
		}
		l.parts[l.n] = part{elem: e, lit: s[i]}
		if e != elemLit {
			l.parts[l.n].lit = 0
		}
		l.n++
		i += run
	}
	for _, k := range []elem{elemYear, elemMonth2, elemDay2} {
		if !seen[k] {
			return bad("missing " + elemName(k))
		}
	}
	if l.isISO() {
		return Layout{}, nil
	}
	l.setShape()
	return l, nil
}

// setShape sets l's fixed-width shape when it has no M or D.
func (l *Layout) setShape() {
	off := uint8(0)
	for _, p := range l.parts[:l.n] {
		switch p.elem {
		case elemLit:
			l.shape[off] = p.lit
			off++
			continue
		case elemYear:
			l.year = off
			off += 4
		case elemMonth2:
			l.month = off
			off += 2
		case elemDay2:
			l.day = off
			off += 2
		default:
			*l = Layout{parts: l.parts, n: l.n} // a variable width
			return
		}
	}
	l.fixed = off
}

// isISO reports whether l spells YYYY-MM-DD explicitly.
func (l Layout) isISO() bool {
	return l.n == 5 &&
		l.parts[0] == part{elem: elemYear} && l.parts[1] == part{elemLit, '-'} &&
		l.parts[2] == part{elem: elemMonth2} && l.parts[3] == part{elemLit, '-'} &&
		l.parts[4] == part{elem: elemDay2}
}

// String returns the layout in canonical (upper-case) spelling, which
// [ParseLayout] maps back to l.
func (l Layout) String() string {
	if l.n == 0 {
		return DefaultLayout
	}
	var b strings.Builder
	for _, p := range l.parts[:l.n] {
		switch p.elem {
		case elemLit:
			b.WriteByte(p.lit)
		default:
			b.WriteString(elemName(p.elem))
		}
	}
	return b.String()
}

// Normalize parses s strictly with layout l and returns the date as ISO
// 8601 "YYYY-MM-DD". Leading and trailing whitespace is ignored; otherwise
// s must match l exactly, with ASCII digits and the layout's separators (no
// times, no "T00:00:00"). The date must exist in the proleptic Gregorian
// calendar ("29-02-2001" and month 13 are refused) and its year must be in
// [MinYear]..[MaxYear]. Errors wrap [ErrBadDate], quote s and say what was
// expected. An ISO date given to the zero Layout is returned without
// allocating. Normalize is safe for concurrent use.
func (l Layout) Normalize(s string) (string, error) {
	in, year, month, day, err := l.parse(s)
	if err != nil {
		return "", err
	}
	if l.n == 0 {
		return in, nil
	}
	var out [10]byte
	return string(appendISO(out[:0], year, month, day)), nil
}

// Append appends the date s, parsed with layout l, to dst as ISO 8601
// "YYYY-MM-DD" ([Layout.Normalize]) and returns the extended slice; on
// error dst is returned unchanged. It does not allocate when dst has room.
// Append is safe for concurrent use.
func (l Layout) Append(dst []byte, s string) ([]byte, error) {
	in, year, month, day, err := l.parse(s)
	switch {
	case err != nil:
		return dst, err
	case l.n == 0:
		return append(dst, in...), nil // already YYYY-MM-DD
	case l.fixed != 0:
		// Fixed widths: the date's digits as written.
		dst = append(dst, in[l.year:l.year+4]...)
		dst = append(append(dst, '-'), in[l.month:l.month+2]...)
		return append(append(dst, '-'), in[l.day:l.day+2]...), nil
	}
	return appendISO(dst, year, month, day), nil
}

// appendISO appends a date as YYYY-MM-DD (year, month and day in range).
func appendISO(dst []byte, year, month, day int) []byte {
	n := len(dst)
	dst = append(dst, "0000-00-00"...)
	put(dst[n:n+4], year)
	put(dst[n+5:n+7], month)
	put(dst[n+8:n+10], day)
	return dst
}

// parse parses s with l: the trimmed input and the date, or the error of
// [Layout.Normalize].
func (l Layout) parse(s string) (in string, year, month, day int, err error) {
	if in = s; !Trimmed(in) {
		in = strings.TrimSpace(in)
	}
	if in == "" {
		return "", 0, 0, 0, ErrEmpty
	}
	if l.n == 0 {
		if len(in) != 10 || in[4] != '-' || in[7] != '-' {
			return "", 0, 0, 0, badDate(s, l)
		}
		var ok1, ok2, ok3 bool
		year, ok1 = digits(in[0:4])
		month, ok2 = digits(in[5:7])
		day, ok3 = digits(in[8:10])
		if !ok1 || !ok2 || !ok3 {
			return "", 0, 0, 0, badDate(s, l)
		}
		if err := checkDate(s, year, month, day); err != nil {
			return "", 0, 0, 0, err
		}
		return in, year, month, day, nil
	}
	if l.fixed != 0 {
		// One width: check the shape, then read the numbers.
		if len(in) != int(l.fixed) {
			return "", 0, 0, 0, badDate(s, l)
		}
		for i := range len(in) {
			if sep := l.shape[i]; (sep == 0 && !isDigit(in[i])) || (sep != 0 && in[i] != sep) {
				return "", 0, 0, 0, badDate(s, l)
			}
		}
		year, _ = digits(in[l.year : l.year+4])
		month, _ = digits(in[l.month : l.month+2])
		day, _ = digits(in[l.day : l.day+2])
		if err := checkDate(s, year, month, day); err != nil {
			return "", 0, 0, 0, err
		}
		return in, year, month, day, nil
	}
	i := 0
	for _, p := range l.parts[:l.n] {
		if p.elem == elemLit {
			if i >= len(in) || in[i] != p.lit {
				return "", 0, 0, 0, badDate(s, l)
			}
			i++
			continue
		}
		minW, maxW := 2, 2
		switch p.elem {
		case elemYear:
			minW, maxW = 4, 4
		case elemMonth, elemDay:
			minW = 1
		}
		w := 0
		for w < maxW && i+w < len(in) && isDigit(in[i+w]) {
			w++
		}
		if w < minW {
			return "", 0, 0, 0, badDate(s, l)
		}
		v, _ := digits(in[i : i+w])
		i += w
		switch p.elem {
		case elemYear:
			year = v
		case elemMonth, elemMonth2:
			month = v
		default:
			day = v
		}
	}
	if i != len(in) {
		return "", 0, 0, 0, badDate(s, l)
	}
	if err := checkDate(s, year, month, day); err != nil {
		return "", 0, 0, 0, err
	}
	return in, year, month, day, nil
}

// checkDate validates a parsed date; s is the input, for the message.
func checkDate(s string, year, month, day int) error {
	switch {
	case year < MinYear || year > MaxYear:
		return fmt.Errorf("%w %q: year %d outside %d..%d", ErrBadDate, truncate(s), year, MinYear, MaxYear)
	case month < 1 || month > 12:
		return fmt.Errorf("%w %q: month %d outside 1..12", ErrBadDate, truncate(s), month)
	case day < 1 || day > daysIn(year, month):
		return fmt.Errorf("%w %q: day %d outside 1..%d for %04d-%02d", ErrBadDate, truncate(s), day, daysIn(year, month), year, month)
	}
	return nil
}

// badDate reports s not matching l.
func badDate(s string, l Layout) error {
	return fmt.Errorf("%w %q: does not match layout %s", ErrBadDate, truncate(s), l)
}

// daysIn returns the number of days of month (1..12) in year (proleptic
// Gregorian; tested against package time).
func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// digits parses an all-ASCII-digit string.
func digits(s string) (int, bool) {
	v := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		v = v*10 + int(s[i]-'0')
	}
	return v, len(s) > 0
}

// put writes v in decimal, zero-padded to len(b).
func put(b []byte, v int) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
}

func elemName(e elem) string {
	switch e {
	case elemYear:
		return "YYYY"
	case elemMonth2:
		return "MM"
	case elemMonth:
		return "M"
	case elemDay2:
		return "DD"
	case elemDay:
		return "D"
	}
	return "?"
}

func isVariable(e elem) bool { return e == elemMonth || e == elemDay }
func isDigit(c byte) bool    { return '0' <= c && c <= '9' }
func isAlnum(c byte) bool    { return isDigit(c) || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' }

func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

// Trimmed reports whether s starts and ends with an ASCII byte above ' '
// (most values): such a byte is never white space, and a string ending with
// one does not end with a multi-byte rune, so strings.TrimSpace would
// return s. It is inlined: loaders test it first to skip that call. False
// does not mean s has white space around it.
func Trimmed(s string) bool {
	n := len(s)
	return n > 0 && s[0]-'!' < 0x80-'!' && s[n-1]-'!' < 0x80-'!'
}
