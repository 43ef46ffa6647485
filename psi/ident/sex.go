package ident

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Normalised sex codes.
const (
	SexMale    = "M"
	SexFemale  = "F"
	SexUnknown = "U" // unknown, not recorded as male or female, or not applicable
)

// NormalizeSex maps an administrative sex code to [SexMale], [SexFemale]
// or [SexUnknown]. Surrounding whitespace is trimmed, and the code is
// compared after NFKC and case folding (so "Ｍ" and "MALE" work). Accepted:
//
//	M: m, male, man, 1, 男
//	F: f, female, woman, 2, 女
//	U: u, unknown, other, x, 0, 9
//
// The digits are those of ISO/IEC 5218 (0 not known, 1 male, 2 female,
// 9 not applicable). An empty code gives [ErrEmpty], not "U": a missing
// value is reported, and a caller that wants to match it as unknown says
// so explicitly. Anything else gives an error wrapping [ErrBadSex], which
// does not quote the value. NormalizeSex does not allocate for ASCII
// input and is safe for concurrent use.
func NormalizeSex(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", ErrEmpty
	}
	if !utf8.ValidString(s) {
		return "", ErrInvalidUTF8
	}
	// The longest accepted code is "unknown"; ASCII input is lowered into
	// a stack buffer, anything else is NFKC-normalised and case-folded.
	const maxLen = len("unknown")
	var buf [maxLen]byte
	if isASCII(s) {
		if len(s) > maxLen {
			return "", errBadSex
		}
		b := buf[:0]
		for i := 0; i < len(s); i++ {
			c := s[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b = append(b, c)
		}
		return sexCode(string(b))
	}
	if len(s) > 4*maxLen {
		return "", errBadSex
	}
	return sexCode(foldCaser.String(norm.NFKC.String(s)))
}

// sexCode maps a folded code.
func sexCode(code string) (string, error) {
	switch code {
	case "m", "male", "man", "1", "男":
		return SexMale, nil
	case "f", "female", "woman", "2", "女":
		return SexFemale, nil
	case "u", "unknown", "other", "x", "0", "9":
		return SexUnknown, nil
	}
	return "", errBadSex
}

// errBadSex is ErrBadSex with the accepted codes. It holds no input.
var errBadSex = wrapped{ErrBadSex, "ident: unrecognised sex code (want m, male, man, f, female, woman, u, unknown, other, x, 0, 1, 2, 9, 男 or 女)"}

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
