// Package identity normalises a patient's identity fields and encodes them
// unambiguously, so that the same person typed by the hospital clerk and by
// the patient at home maps to the same bytes, and two different people never
// do.
//
// The encoding is the input to the hospital's OPRF (see package recordkey);
// it is secret: it never leaves the relay or the patient terminal in the
// clear, and it is never logged.
//
// Normalisation is the library's, [github.com/mpsi-dev/mpsi/psi/ident],
// field by field:
//
//   - names: [ident.NormalizeName] (NFKC, case folding, accents removed,
//     punctuation dropped, whitespace collapsed: "  José  O'Brien" →
//     "jose obrien");
//   - birth date: strictly YYYY-MM-DD, so "1989-5-25" is refused rather than
//     guessed;
//   - national ID: [ident.NormalizeID] ("999-76-6866" and "999 76 6866" agree).
//
// The encoding is a label, then for each field in a fixed order a one-byte
// tag, a two-byte big-endian length and the bytes, so ("ab","c") and
// ("a","bc") never collide.
package identity

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/mpsi-dev/mpsi/psi/ident"
)

// Label opens every encoding and binds it to this scheme and version.
const Label = "mpsi/examples/identitykeys/v1/identity"

// MaxFieldLen is the largest normalised field, in bytes.
const MaxFieldLen = 256

// Field tags in the encoding.
const (
	tagGiven    = 1
	tagFamily   = 2
	tagBirth    = 3
	tagNational = 4
)

// ErrInvalid reports identity fields that cannot be normalised: a missing
// field, an unparsable date, or a field longer than [MaxFieldLen]. Check with
// errors.Is and ask the user to correct the input.
var ErrInvalid = errors.New("identity: invalid identity fields")

// Fields are the identity fields a patient types and a hospital holds. The
// zero value is not a valid identity.
type Fields struct {
	Given      string // given name(s)
	Family     string // family name
	BirthDate  string // YYYY-MM-DD
	NationalID string // e.g. a social security number
}

// Normalized is a normalised identity; obtain one with [Normalize].
type Normalized struct {
	f Fields
}

// Normalize checks and normalises f. Errors wrap [ErrInvalid] and name the
// faulty field, never its value.
func Normalize(f Fields) (Normalized, error) {
	var n Normalized
	var err error
	if n.f.Given, err = normName("given name", f.Given); err != nil {
		return Normalized{}, err
	}
	if n.f.Family, err = normName("family name", f.Family); err != nil {
		return Normalized{}, err
	}
	if n.f.BirthDate, err = normDate(f.BirthDate); err != nil {
		return Normalized{}, err
	}
	if n.f.NationalID, err = normID(f.NationalID); err != nil {
		return Normalized{}, err
	}
	return n, nil
}

// Fields returns the normalised fields.
func (n Normalized) Fields() Fields { return n.f }

// Encode returns the unambiguous, length-prefixed encoding of n. It panics
// if n is the zero value, which is a programmer error ([Normalize] never
// returns it without an error).
func (n Normalized) Encode() []byte {
	if n.f == (Fields{}) {
		panic("identity: Encode of zero Normalized")
	}
	var b cryptobyte.Builder
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(Label)) })
	for _, fld := range []struct {
		tag uint8
		v   string
	}{{tagGiven, n.f.Given}, {tagFamily, n.f.Family}, {tagBirth, n.f.BirthDate}, {tagNational, n.f.NationalID}} {
		b.AddUint8(fld.tag)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(fld.v)) })
	}
	return b.BytesOrPanic()
}

// Encode normalises f and returns its encoding.
func Encode(f Fields) ([]byte, error) {
	n, err := Normalize(f)
	if err != nil {
		return nil, err
	}
	return n.Encode(), nil
}

func normName(what, s string) (string, error) {
	out, err := ident.NormalizeName(s)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrInvalid, what, errors.Unwrap(err))
	}
	return checkLen(what, out)
}

func normID(s string) (string, error) {
	out, err := ident.NormalizeID(s)
	if err != nil {
		return "", fmt.Errorf("%w: national id is empty or not text", ErrInvalid)
	}
	return checkLen("national id", out)
}

func normDate(s string) (string, error) {
	out, err := ident.Layout{}.Normalize(s)
	if err != nil {
		return "", fmt.Errorf("%w: birth date is not YYYY-MM-DD", ErrInvalid)
	}
	return out, nil
}

func checkLen(what, s string) (string, error) {
	switch {
	case s == "":
		return "", fmt.Errorf("%w: %s is empty", ErrInvalid, what)
	case len(s) > MaxFieldLen:
		return "", fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalid, what, MaxFieldLen)
	}
	return s, nil
}
