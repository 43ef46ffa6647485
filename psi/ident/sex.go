package ident

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Normalised sex codes.
const (
	SexMale    = "M"
	SexFemale  = "F"
	SexUnknown = "U" // unknown, not recorded as male or female, or not applicable
)

// sexTable is the built-in table of [NormalizeSex]: codes as sexCodeKey
// leaves them (trimmed, NFKC, case-folded, accents removed) to "M", "F" or
// "U". It is never modified. The first line of each block is the table of
// ident/1 before other languages were added; those entries keep their
// meaning, so no key made from an input accepted then changes.
var sexTable = map[string]string{
	"m": SexMale, "male": SexMale, "man": SexMale, "1": SexMale, "男": SexMale,
	"masc": SexMale, "masculine": SexMale, // English abbreviations
	"mannlich": SexMale, "maennlich": SexMale, "mann": SexMale, // German (männlich)
	"masculin": SexMale, "homme": SexMale, // French
	"masculino": SexMale, "hombre": SexMale, "varon": SexMale, // Spanish (varón), Portuguese masculino
	"homem":   SexMale,                                       // Portuguese
	"maschio": SexMale, "maschile": SexMale, "uomo": SexMale, // Italian
	"mannelijk": SexMale, // Dutch (man above)

	"f": SexFemale, "female": SexFemale, "woman": SexFemale, "2": SexFemale, "女": SexFemale,
	"fem": SexFemale, "feminine": SexFemale,
	"w": SexFemale, "weiblich": SexFemale, "frau": SexFemale, // German (m/w/d)
	"feminin": SexFemale, "femme": SexFemale, // French (féminin)
	"femenino": SexFemale, "mujer": SexFemale, // Spanish
	"feminino": SexFemale, "mulher": SexFemale, // Portuguese
	"femmina": SexFemale, "femminile": SexFemale, "donna": SexFemale, // Italian
	"vrouwelijk": SexFemale, "vrouw": SexFemale, // Dutch

	"u": SexUnknown, "unknown": SexUnknown, "other": SexUnknown, "x": SexUnknown, "0": SexUnknown, "9": SexUnknown,
	"i": SexUnknown, "unspecified": SexUnknown, "undetermined": SexUnknown, "indeterminate": SexUnknown,
	"divers": SexUnknown, "unbekannt": SexUnknown, "unbestimmt": SexUnknown, // German
	"inconnu": SexUnknown, "autre": SexUnknown, "indetermine": SexUnknown, // French (indéterminé)
	"desconocido": SexUnknown, "otro": SexUnknown, "indeterminado": SexUnknown, // Spanish, Portuguese indeterminado
	"desconhecido": SexUnknown, "outro": SexUnknown, "ignorado": SexUnknown, // Portuguese
	"sconosciuto": SexUnknown, "altro": SexUnknown, "indeterminato": SexUnknown, // Italian
	"onbekend": SexUnknown, "anders": SexUnknown, "overig": SexUnknown, // Dutch (anders also German)
}

// ambiguousSex are the single letters that mean different sexes in
// different code lists; [NormalizeSex] refuses them ([ErrAmbiguousSex])
// unless the hospital's [SexCodes] say what they mean.
//
//	h   homme, hombre, homem: male, but in the Spanish and Portuguese H/M
//	    lists m is mujer/mulher (female), so a file with h is read wrongly
//	    wherever its m is taken for male
//	v   vrouw (Dutch M/V: female) or varón (Spanish V/M: male)
//	d   divers (German m/w/d: neither) or donna (Italian U/D: female)
var ambiguousSex = map[string]bool{"h": true, "v": true, "d": true}

// maxSexCode bounds the length in bytes of a sex code after trimming
// (built-in or a hospital's own); longer values are refused unread.
const maxSexCode = 32

// SexCodes are a hospital's own sex codes: what each code of its export
// means, looked up before the built-in table of [NormalizeSex]. A Spanish
// export coded H (hombre) and M (mujer) is read with
//
//	ident.NewSexCodes(map[string]string{"H": "M", "M": "F"})
//
// A nil *SexCodes is the built-in table alone. SexCodes are immutable and
// safe for concurrent use.
type SexCodes struct {
	codes map[string]string // sexCodeKey of the code → SexMale, SexFemale or SexUnknown
}

// NewSexCodes returns the table mapping each code of codes (compared as
// [NormalizeSex] compares: trimmed, NFKC, case-folded, accents removed) to
// its value, "M", "F" or "U" (in either case). It refuses an empty code, a
// code longer than 32 bytes or not valid UTF-8, another value, and two
// codes that compare equal but map to different values. These errors
// quote the codes, which are configuration (a mapping file), not a
// patient's value.
func NewSexCodes(codes map[string]string) (*SexCodes, error) {
	c := &SexCodes{codes: make(map[string]string, len(codes))}
	from := make(map[string]string, len(codes))
	for _, code := range slices.Sorted(maps.Keys(codes)) {
		var v string
		switch strings.ToUpper(strings.TrimSpace(codes[code])) {
		case SexMale:
			v = SexMale
		case SexFemale:
			v = SexFemale
		case SexUnknown:
			v = SexUnknown
		default:
			return nil, fmt.Errorf("ident: sex code %q: value %q is not M, F or U", truncate(code), truncate(codes[code]))
		}
		kb, ok := sexCodeKey(make([]byte, 0, maxSexCode), code)
		k := string(kb)
		if !ok || k == "" {
			return nil, fmt.Errorf("ident: sex code %q: empty, not valid UTF-8 or longer than %d bytes", truncate(code), maxSexCode)
		}
		if prev, dup := c.codes[k]; dup && prev != v {
			return nil, fmt.Errorf("ident: sex codes %q and %q are the same code with different values", truncate(from[k]), truncate(code))
		}
		c.codes[k], from[k] = v, code
	}
	return c, nil
}

// NormalizeSex maps an administrative sex code to [SexMale], [SexFemale]
// or [SexUnknown] with the built-in table; see [SexCodes.Normalize]. It
// does not allocate for ASCII input and is safe for concurrent use.
func NormalizeSex(s string) (string, error) {
	return (*SexCodes)(nil).Normalize(s)
}

// Normalize maps an administrative sex code to [SexMale], [SexFemale] or
// [SexUnknown]: the hospital's own codes first, then the built-in table
// (words and initials in English, German, French, Spanish, Portuguese,
// Italian and Dutch, the ISO/IEC 5218 digits; listed in the package
// documentation). Surrounding whitespace is trimmed, and the code is
// compared after NFKC, case folding and removal of accents (so "Ｍ",
// "MALE", "Männlich" and "FÉMININ" work).
//
// An empty code gives [ErrEmpty], not "U": a missing value is reported,
// and a caller that wants to match it as unknown says so explicitly. The
// letters h, v and d, which mean different sexes in different code lists,
// give an error wrapping [ErrAmbiguousSex] unless the hospital's codes
// list them. Anything else gives an error wrapping [ErrBadSex]. No error
// quotes the value. Normalize does not allocate for ASCII input and is
// safe for concurrent use.
func (c *SexCodes) Normalize(s string) (string, error) {
	if !Trimmed(s) {
		s = strings.TrimSpace(s)
	}
	if s == "" {
		return "", ErrEmpty
	}
	if c == nil || len(c.codes) == 0 {
		// A short ASCII code, no hospital codes: the table's entry by the
		// code's lower-case bytes packed in a word ("M", "male", "female"),
		// without the general path's normalisation.
		if w, ok := packASCII(s); ok {
			if v, ok := sexWord[w]; ok {
				return v, nil
			}
		}
	}
	if !utf8.ValidString(s) {
		return "", ErrInvalidUTF8
	}
	var buf [maxSexCode]byte
	k, ok := sexCodeKey(buf[:0], s)
	if !ok {
		return "", errBadSex
	}
	if c != nil {
		if v, ok := c.codes[string(k)]; ok {
			return v, nil
		}
	}
	if v, ok := sexTable[string(k)]; ok {
		return v, nil
	}
	if ambiguousSex[string(k)] {
		return "", errAmbiguousSex
	}
	return "", errBadSex
}

// Append appends the normal form of the sex code s ([SexCodes.Normalize])
// to dst; on error dst is returned unchanged. A nil *SexCodes reads with
// the built-in table alone, as [NormalizeSex].
func (c *SexCodes) Append(dst []byte, s string) ([]byte, error) {
	v, err := c.Normalize(s)
	if err != nil {
		return dst, err
	}
	return append(dst, v...), nil
}

// sexCodeKey returns the form sex codes are compared in: s trimmed,
// NFKC, case-folded, combining marks removed (NFD, then NFC), appended to
// buf. ASCII is lowered without allocating when buf has room. It reports false for invalid UTF-8 or a result
// longer than maxSexCode bytes. Callers index maps with string(key), which
// does not allocate.
func sexCodeKey(buf []byte, s string) ([]byte, bool) {
	if !Trimmed(s) {
		s = strings.TrimSpace(s)
	}
	if isASCII(s) {
		if len(s) > maxSexCode {
			return nil, false
		}
		for i := 0; i < len(s); i++ {
			c := s[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf = append(buf, c)
		}
		return buf, true
	}
	if len(s) > 4*maxSexCode || !utf8.ValidString(s) {
		return nil, false
	}
	d := norm.NFD.String(foldCaser.String(norm.NFKC.String(s)))
	var b strings.Builder
	for _, r := range d {
		if !unicode.Is(unicode.Mn, r) {
			b.WriteRune(r)
		}
	}
	k := norm.NFC.String(b.String())
	if len(k) > maxSexCode {
		return nil, false
	}
	return append(buf, k...), true
}

// errBadSex is ErrBadSex with the remedy. It holds no input.
var errBadSex error = wrapped{ErrBadSex, "ident: unrecognised sex code (want a word or initial for male, female or unknown in English, German, French, Spanish, Portuguese, Italian or Dutch, or an ISO/IEC 5218 digit 0, 1, 2, 9; declare other codes in the mapping's sex_codes)"}

// errAmbiguousSex is ErrAmbiguousSex with the remedy. It holds no input
// (not even which of the letters it was).
var errAmbiguousSex error = wrapped{ErrAmbiguousSex, `ident: ambiguous sex code: the letters h, v and d mean different sexes in different code lists (h: homme/hombre/homem where m may be mujer/mulher; v: vrouw or varón; d: divers or donna); declare the column's codes in the mapping, e.g. "sex_codes": {"H": "M", "M": "F"}`}

// wrapped is a constant error with a fixed message that unwraps to a
// sentinel, for hot paths that must not allocate.
type wrapped struct {
	err error
	msg string
}

func (e wrapped) Error() string { return e.msg }
func (e wrapped) Unwrap() error { return e.err }

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// sexWord is sexTable's entries whose codes are ASCII and at most 8 bytes
// long, by packASCII of the code; built from sexTable.
var sexWord = func() map[uint64]string {
	m := make(map[uint64]string)
	for k, v := range sexTable {
		if w, ok := packASCII(k); ok {
			m[w] = v
		}
	}
	return m
}()

// packASCII packs s, lowered, into a word (first byte lowest), or reports
// false when s is longer than 8 bytes, empty or not ASCII. Distinct codes
// give distinct words (no code holds a NUL byte: the packing pads with
// them, and sexTable has none).
func packASCII(s string) (uint64, bool) {
	if len(s) == 0 || len(s) > 8 {
		return 0, false
	}
	var w uint64
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if c >= utf8.RuneSelf || c == 0 {
			return 0, false
		}
		w = w<<8 | uint64(lowerASCII(c))
	}
	return w, true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
