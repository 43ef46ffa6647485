// Package records holds the hospital side of the example: patients and their
// conditions as a hospital database keeps them, the record bundle a relay
// encrypts for one patient, and loaders for the Synthea sample data (split
// across two hospitals) or generated patients.
//
// A bundle's plaintext is secret (it holds the patient's identity and
// conditions); it exists only in the relay, between reading the database and
// sealing, and in terminals that hold the patient's key.
package records

import (
	"errors"
	"fmt"

	"github.com/mpsi-dev/mpsi/examples/identitykeys/identity"
	"golang.org/x/crypto/cryptobyte"
)

// Limits on a bundle.
const (
	MaxConditions = 4096
	maxShort      = 255
	maxText       = 1024
)

const bundleLabel = "mpsi/examples/identitykeys/v1/bundle-encoding"

// ErrMalformed reports a bundle that does not decode. Discard it.
var ErrMalformed = errors.New("records: malformed bundle")

// Condition is one diagnosis (SNOMED CT code) with its dates (YYYY-MM-DD; Stop
// may be empty for an ongoing condition).
type Condition struct {
	Start, Stop, Code, Description string
}

// Patient is a row of a hospital database with its conditions.
type Patient struct {
	LocalID    string // the hospital's own record id; never leaves the hospital
	Identity   identity.Fields
	Sex        string
	Conditions []Condition
}

// DB is one hospital's database. It is not safe for concurrent mutation.
type DB struct {
	Hospital string
	Patients []Patient
}

// Bundle is what a relay seals for one patient: the hospital, the patient's
// demographics and conditions.
type Bundle struct {
	Hospital   string
	Given      string
	Family     string
	BirthDate  string
	Sex        string
	Conditions []Condition
}

// NewBundle makes the bundle of p at hospital.
func NewBundle(hospital string, p *Patient) *Bundle {
	return &Bundle{
		Hospital: hospital, Given: p.Identity.Given, Family: p.Identity.Family,
		BirthDate: p.Identity.BirthDate, Sex: p.Sex, Conditions: p.Conditions,
	}
}

// MarshalBinary encodes b canonically (length-prefixed fields).
func (b *Bundle) MarshalBinary() ([]byte, error) {
	if len(b.Conditions) > MaxConditions {
		return nil, fmt.Errorf("records: %d conditions, limit %d", len(b.Conditions), MaxConditions)
	}
	for _, s := range []string{b.Hospital, b.BirthDate, b.Sex} {
		if len(s) > maxShort {
			return nil, fmt.Errorf("records: field longer than %d bytes", maxShort)
		}
	}
	for _, s := range []string{b.Given, b.Family} {
		if len(s) > maxText {
			return nil, fmt.Errorf("records: name longer than %d bytes", maxText)
		}
	}
	var cb cryptobyte.Builder
	short := func(s string) { cb.AddUint8LengthPrefixed(func(c *cryptobyte.Builder) { c.AddBytes([]byte(s)) }) }
	text := func(s string) { cb.AddUint16LengthPrefixed(func(c *cryptobyte.Builder) { c.AddBytes([]byte(s)) }) }
	short(bundleLabel)
	short(b.Hospital)
	text(b.Given)
	text(b.Family)
	short(b.BirthDate)
	short(b.Sex)
	cb.AddUint16(uint16(len(b.Conditions)))
	for _, c := range b.Conditions {
		for _, s := range []string{c.Start, c.Stop, c.Code} {
			if len(s) > maxShort {
				return nil, fmt.Errorf("records: condition field longer than %d bytes", maxShort)
			}
			short(s)
		}
		if len(c.Description) > maxText {
			return nil, fmt.Errorf("records: condition description longer than %d bytes", maxText)
		}
		text(c.Description)
	}
	return cb.Bytes()
}

// ParseBundle decodes a bundle encoded by [Bundle.MarshalBinary]. Anything
// else, including trailing bytes, returns an error wrapping [ErrMalformed].
func ParseBundle(data []byte) (*Bundle, error) {
	s := cryptobyte.String(data)
	ok := true
	short := func() string {
		var v cryptobyte.String
		ok = ok && s.ReadUint8LengthPrefixed(&v)
		return string(v)
	}
	text := func() string {
		var v cryptobyte.String
		ok = ok && s.ReadUint16LengthPrefixed(&v)
		if len(v) > maxText {
			ok = false
		}
		return string(v)
	}
	if short() != bundleLabel || !ok {
		return nil, fmt.Errorf("%w: bad label", ErrMalformed)
	}
	b := &Bundle{Hospital: short(), Given: text(), Family: text(), BirthDate: short(), Sex: short()}
	var n uint16
	if !ok || !s.ReadUint16(&n) {
		return nil, fmt.Errorf("%w: truncated header", ErrMalformed)
	}
	if int(n) > MaxConditions {
		return nil, fmt.Errorf("%w: %d conditions", ErrMalformed, n)
	}
	if n > 0 {
		b.Conditions = make([]Condition, 0, min(int(n), len(s)/5+1))
	}
	for i := range int(n) {
		c := Condition{Start: short(), Stop: short(), Code: short(), Description: text()}
		if !ok {
			return nil, fmt.Errorf("%w: condition %d truncated", ErrMalformed, i)
		}
		b.Conditions = append(b.Conditions, c)
	}
	if !s.Empty() {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(s))
	}
	return b, nil
}
