package ident

import (
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Internal entry points for the fast-path identity tests.
var (
	ASCIIName     = asciiName
	GeneralName   = generalName
	ReferenceName = referenceName
	ASCIIID       = asciiID
	GeneralID     = generalID
	LatinName     = appendLatinName
	DaysIn        = daysIn
	SexTable      = sexTable
	AmbiguousSex  = ambiguousSex
)

// VariableWidth returns l without its fixed-width shape: Normalize then
// takes the general path, against which the shape's fast path is tested.
func VariableWidth(l Layout) Layout {
	l.fixed = 0
	return l
}

// referenceName is the straightforward NormalizeName pipeline of the
// package documentation (NFKC, fold, NFKD of the whole string, classify,
// NFC), against which the optimised generalName is tested.
func referenceName(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", ErrInvalidUTF8
	}
	t := norm.NFKD.String(foldCaser.String(norm.NFKC.String(s)))
	var w nameWriter
	for _, r := range t {
		w.put(r)
	}
	if len(w.buf) == 0 {
		return "", ErrEmpty
	}
	return norm.NFC.String(string(w.buf)), nil
}
