package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ErrMapping is wrapped by errors about a FHIR mapping file.
var ErrMapping = errors.New("fhir: invalid mapping")

// ConditionPrefix starts a path that is read from the patient's Condition
// resources (all their values, joined as a codes list) instead of from the
// Patient resource.
const ConditionPrefix = "Condition:"

// SNOMED is the code system of the default condition_codes.
const SNOMED = "http://snomed.info/sct"

// DefaultPaths are the logical fields a Patient (and its Conditions) gives
// without a mapping file.
var defaultPaths = map[string]string{
	"record_id":       "id",
	"given_name":      "name[use=official].given[0] | name[0].given[0]",
	"family_name":     "name[use=official].family | name[0].family",
	"maiden_name":     "name[use=maiden].family",
	"birth_date":      "birthDate",
	"sex":             "gender",
	"ssn":             "identifier[system=http://hl7.org/fhir/sid/us-ssn].value",
	"mrn":             "identifier[type.coding.code=MR].value",
	"postal_code":     "address[use=home].postalCode | address[0].postalCode",
	"deceased":        "deceasedBoolean | deceasedDateTime.exists()",
	"condition_codes": ConditionPrefix + "code.coding[system=" + SNOMED + "].code",
}

// A Mapping says where each logical field is in a Patient resource (or,
// for paths starting with [ConditionPrefix], in its Conditions).
type Mapping map[string]*Path

// DefaultMapping returns the default mapping: record_id (Patient.id),
// given_name and family_name (the official name, else the first),
// maiden_name (the name with use maiden), birth_date, sex (gender), ssn
// (the identifier with system http://hl7.org/fhir/sid/us-ssn), mrn (the
// identifier typed MR), postal_code (the home address, else the first),
// deceased (1 or 0) and condition_codes (the SNOMED codes of the
// patient's Conditions).
func DefaultMapping() Mapping {
	m := Mapping{}
	for f, p := range defaultPaths {
		m[f] = mustPath(p)
	}
	return m
}

func mustPath(s string) *Path {
	p, err := parseAny(s)
	if err != nil {
		panic(err)
	}
	return p
}

// parseAny parses a path that may start with ConditionPrefix.
func parseAny(s string) (*Path, error) {
	rest, cond := strings.CutPrefix(strings.TrimSpace(s), ConditionPrefix)
	p, err := ParsePath(rest)
	if err != nil {
		return nil, err
	}
	p.src, p.condition = s, cond
	return p, nil
}

// ParseMapping parses a JSON object of field names to paths, laid over
// the default mapping: {"ssn": "identifier[system=urn:oid:1.2.3].value"}.
// An empty path removes a default field.
func ParseMapping(b []byte) (Mapping, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	var raw map[string]string
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMapping, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrMapping)
	}
	m := DefaultMapping()
	for _, f := range slices.Sorted(maps.Keys(raw)) {
		if raw[f] == "" {
			delete(m, f)
			continue
		}
		p, err := parseAny(raw[f])
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrMapping, f, err)
		}
		m[f] = p
	}
	if p, ok := m["record_id"]; !ok || p.condition {
		return nil, fmt.Errorf("%w: record_id must be a Patient path", ErrMapping)
	}
	return m, nil
}

// LoadMapping reads a mapping file (see [ParseMapping]); errors name it.
func LoadMapping(path string) (Mapping, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fhir: reading mapping: %w", err)
	}
	m, err := ParseMapping(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return m, nil
}
