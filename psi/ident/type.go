package ident

import "fmt"

// Type is a logical field type from the session spec (doc/DESIGN.md §2).
type Type string

// The field types of the session spec.
const (
	TypeName   Type = "name"   // a personal name: NormalizeName
	TypeDate   Type = "date"   // a calendar date: Layout.Normalize
	TypeSex    Type = "sex"    // administrative sex: NormalizeSex
	TypeID     Type = "id"     // an identifier (SSN, MRN, passport): NormalizeID
	TypeNumber Type = "number" // a numeric attribute; never a match field
	TypeCodes  Type = "codes"  // a list of codes; never a match field
)

// ParseType returns the Type named s. Names are exact and lowercase, as
// written in the session spec. An unknown name gives an error wrapping
// [ErrBadType] that quotes s (type names are not secret).
func ParseType(s string) (Type, error) {
	switch t := Type(s); t {
	case TypeName, TypeDate, TypeSex, TypeID, TypeNumber, TypeCodes:
		return t, nil
	}
	return "", fmt.Errorf("%w %q (want name, date, sex, id, number or codes)", ErrBadType, truncate(s))
}

// Matchable reports whether fields of type t may be match fields, that is,
// part of the key: name, date, sex and id may; number and codes may not.
func (t Type) Matchable() bool {
	switch t {
	case TypeName, TypeDate, TypeSex, TypeID:
		return true
	}
	return false
}

// Normalize normalises s as a field of type t: [NormalizeName],
// [Layout.Normalize] with l, [NormalizeSex] or [NormalizeID]. l is used
// only for [TypeDate]; pass the zero Layout otherwise. A type that is not
// matchable gives an error wrapping [ErrNotMatchable]; an unknown type one
// wrapping [ErrBadType].
func Normalize(t Type, l Layout, s string) (string, error) {
	switch t {
	case TypeName:
		return NormalizeName(s)
	case TypeDate:
		return l.Normalize(s)
	case TypeSex:
		return NormalizeSex(s)
	case TypeID:
		return NormalizeID(s)
	case TypeNumber, TypeCodes:
		return "", fmt.Errorf("%w: %s", ErrNotMatchable, t)
	}
	return "", fmt.Errorf("%w %q", ErrBadType, truncate(string(t)))
}

// AppendNormalized appends the normal form of s as a field of type t
// (the value [Normalize] returns) to dst and returns the extended slice; on
// error, which is Normalize's, dst is returned unchanged. It does not
// allocate when dst has room and s is ASCII (for names, also precomposed
// Latin-1 letters). It is safe for concurrent use.
func AppendNormalized(dst []byte, t Type, l Layout, s string) ([]byte, error) {
	switch t {
	case TypeName:
		return AppendName(dst, s)
	case TypeDate:
		return l.Append(dst, s)
	case TypeID:
		return AppendID(dst, s)
	}
	v, err := Normalize(t, l, s)
	if err != nil {
		return dst, err
	}
	return append(dst, v...), nil
}

// truncate shortens a non-secret value quoted in an error message so that
// a corrupt input cannot blow up a log line.
func truncate(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// NormalizationVersion names the normalisation rules and Unicode tables in
// force, for example "ident/1 unicode/15.0.0". Parties of one session must
// agree on it: the coordinator refuses a session whose parties report
// different versions, since equal identifiers could then fail to match.
func NormalizationVersion() string {
	return fmt.Sprintf("ident/%d unicode/%s", KeyVersion, UnicodeVersion)
}
