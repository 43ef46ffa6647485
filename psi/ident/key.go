package ident

import (
	"encoding/binary"
	"fmt"
)

// KeyVersion is the first byte of every key made by [AppendKey]. It
// changes whenever the key encoding or the normalisation rules change, so
// that keys made under different rules never compare equal by accident.
const KeyVersion = 1

// Field is one normalised match field: the logical field name from the
// session spec and its normalised value.
type Field struct {
	Name  string
	Value string
}

// AppendKey appends the key of fields to dst and returns the extended
// slice. The key is KeyVersion, then for each field in order
//
//	uvarint(len(Name)) Name uvarint(len(Value)) Value
//
// with uvarint as in [binary.AppendUvarint]. Being field-tagged and
// length-prefixed, the encoding is injective: ("ab", "c") and ("a", "bc")
// never collide, nor do field lists of different lengths. The order of
// fields is significant; callers use the session spec's order. Values are
// expected to be normalised already; AppendKey does not check them.
//
// The key contains the identifiers in clear: it is secret, and is only
// ever fed to the token functions. AppendKey does not allocate if dst has
// room.
func AppendKey(dst []byte, fields []Field) []byte {
	dst = append(dst, KeyVersion)
	for _, f := range fields {
		dst = AppendKeyField(dst, f.Name, f.Value)
	}
	return dst
}

// AppendKeyField appends one field of a key to dst, for callers that build
// a key without a []Field: the key of fields is KeyVersion followed by
// AppendKeyField of each field in order, byte for byte [AppendKey]'s.
func AppendKeyField[V string | []byte](dst []byte, name string, value V) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(name)))
	dst = append(dst, name...)
	dst = binary.AppendUvarint(dst, uint64(len(value)))
	return append(dst, value...)
}

// DecodeKey is the inverse of [AppendKey]. It is canonical: it accepts
// exactly the outputs of AppendKey, so an accepted b re-encodes to the
// same bytes. It rejects an empty input, a version other than
// [KeyVersion], truncated or trailing bytes (an incomplete field),
// non-minimal or overlong varints, and lengths beyond the input, with an
// error wrapping [ErrMalformedKey] that holds no key material. A key with
// no fields decodes to an empty (nil) slice.
func DecodeKey(b []byte) ([]Field, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrMalformedKey)
	}
	if b[0] != KeyVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrMalformedKey, b[0], KeyVersion)
	}
	b = b[1:]
	var fields []Field
	for len(b) > 0 {
		var f Field
		var err error
		if f.Name, b, err = readString(b); err != nil {
			return nil, fmt.Errorf("%w: field %d name: %v", ErrMalformedKey, len(fields), err)
		}
		if f.Value, b, err = readString(b); err != nil {
			return nil, fmt.Errorf("%w: field %d value: %v", ErrMalformedKey, len(fields), err)
		}
		fields = append(fields, f)
	}
	return fields, nil
}

// readString reads one uvarint-length-prefixed string.
func readString(b []byte) (string, []byte, error) {
	n, k := binary.Uvarint(b)
	switch {
	case k == 0:
		return "", nil, fmt.Errorf("truncated length")
	case k < 0:
		return "", nil, fmt.Errorf("length overflows 64 bits")
	case k > 1 && b[k-1] == 0:
		return "", nil, fmt.Errorf("non-minimal length")
	case n > uint64(len(b)-k):
		return "", nil, fmt.Errorf("length %d exceeds the %d bytes left", n, len(b)-k)
	}
	end := k + int(n)
	return string(b[k:end]), b[end:], nil
}
