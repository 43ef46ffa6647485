package party

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/mpsi-dev/mpsi/psi/ident"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// RecordIDField is the mapping entry naming the column that identifies a row
// locally. It is never sent anywhere; with reveal: membership a party's own
// Result lists the record_ids of its shared rows.
const RecordIDField = "record_id"

// ErrMapping is wrapped by every error about a column mapping.
var ErrMapping = errors.New("party: invalid mapping")

// Mapping maps logical fields (and record_id) to a hospital's own columns
// and formats (doc/DESIGN.md §2). A nil or empty Mapping matches columns by the
// logical field name, case-insensitively.
type Mapping map[string]Column

// Column says where and how a logical field is stored.
type Column struct {
	// Column is the CSV header name, matched case-insensitively.
	Column string `json:"column"`
	// Format is the date layout for date fields, written with YYYY, MM and
	// DD ("MM/DD/YYYY"); default YYYY-MM-DD.
	Format string `json:"format,omitempty"`
	// Separator splits a codes field; default ";".
	Separator string `json:"separator,omitempty"`
	// SexCodes says what the export's own codes of a sex field mean,
	// each code to "M", "F" or "U" ({"H": "M", "M": "F"} for a Spanish
	// H/M export), looked up before the built-in table
	// ([ident.NewSexCodes]). Needed for the letters h, v and d, which
	// mean different sexes in different languages.
	SexCodes map[string]string `json:"sex_codes,omitempty"`
}

// LoadMapping reads a mapping file. Unknown keys are refused; errors name
// the file.
func LoadMapping(path string) (Mapping, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("party: reading mapping: %w", err)
	}
	m, err := ParseMapping(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return m, nil
}

// ParseMapping parses a JSON mapping.
func ParseMapping(b []byte) (Mapping, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Mapping
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMapping, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrMapping)
	}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}) {
		c := m[k]
		if c.Column == "" {
			return nil, fmt.Errorf("%w: %s.column: missing", ErrMapping, k)
		}
		if c.Format != "" {
			if _, err := ident.ParseLayout(c.Format); err != nil {
				return nil, fmt.Errorf("%w: %s.format: %v", ErrMapping, k, err)
			}
		}
		if c.SexCodes != nil {
			if _, err := ident.NewSexCodes(c.SexCodes); err != nil {
				return nil, fmt.Errorf("%w: %s.sex_codes: %v", ErrMapping, k, err)
			}
		}
	}
	return m, nil
}

// check verifies the mapping against the spec: every key is record_id or a
// declared field; formats only on dates; separators only on codes.
func (m Mapping) check(s *session.Spec) error {
	for k, c := range m {
		if k == RecordIDField {
			if c.Format != "" || c.Separator != "" || c.SexCodes != nil {
				return fmt.Errorf("%w: %s: format/separator/sex_codes do not apply", ErrMapping, k)
			}
			continue
		}
		t, ok := s.FieldType(k)
		if !ok && slices.Contains(s.MatchFieldNames(), k) && s.CLKSchema() != nil {
			if c.Format != "" || c.Separator != "" {
				return fmt.Errorf("%w: %s: format/separator do not apply to a CLK feature (its schema says how to read it)", ErrMapping, k)
			}
			continue // a feature of the CLK schema
		}
		if !ok {
			return fmt.Errorf("%w: %q is not a field of session %s", ErrMapping, k, s.ID)
		}
		if c.Format != "" && t != ident.TypeDate {
			return fmt.Errorf("%w: %s.format: field has type %s, not date", ErrMapping, k, t)
		}
		if c.Separator != "" && t != ident.TypeCodes {
			return fmt.Errorf("%w: %s.separator: field has type %s, not codes", ErrMapping, k, t)
		}
		if c.SexCodes != nil {
			if t != ident.TypeSex {
				return fmt.Errorf("%w: %s.sex_codes: field has type %s, not sex", ErrMapping, k, t)
			}
			if _, err := ident.NewSexCodes(c.SexCodes); err != nil {
				return fmt.Errorf("%w: %s.sex_codes: %v", ErrMapping, k, err)
			}
		}
	}
	return nil
}

// appendNormalized is [ident.AppendNormalized] for the field c, reading a
// sex field with the mapping's sex_codes when it has them.
func (c *colSpec) appendNormalized(dst []byte, raw string) ([]byte, error) {
	switch {
	case c.sex != nil || c.typ == ident.TypeSex:
		return c.sex.Append(dst, raw) // nil: the built-in table
	case c.typ == ident.TypeName:
		return ident.AppendName(dst, raw)
	case c.typ == ident.TypeDate:
		return c.layout.Append(dst, raw)
	}
	return ident.AppendNormalized(dst, c.typ, c.layout, raw)
}
