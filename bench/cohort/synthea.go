package cohort

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
)

// Person is a patient's true identity, for [Config.People].
type Person struct {
	Given, Surname string
	// Maiden is the birth surname of a woman whose surname changed, "".
	Maiden string
	Birth  time.Time
	Female bool
	// SSN is nine ASCII digits, or "" when unknown.
	SSN string
}

// ReadSyntheaPatients reads the identities of a Synthea patients.csv
// (columns FIRST, LAST, MAIDEN, BIRTHDATE as YYYY-MM-DD, GENDER as M or
// F, SSN as 999-99-9999), dropping the numeric suffixes Synthea appends
// to names ("José Eduardo181" → "José Eduardo"). Errors name the line
// and column, never a value.
func ReadSyntheaPatients(r io.Reader) ([]Person, error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("cohort: synthea patients: header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	for _, c := range []string{"FIRST", "LAST", "MAIDEN", "BIRTHDATE", "GENDER", "SSN"} {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("cohort: synthea patients: no column %s", c)
		}
	}
	var out []Person
	for {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("cohort: synthea patients: %w", err)
		}
		line, _ := cr.FieldPos(0)
		bad := func(c string) error { return fmt.Errorf("cohort: synthea patients: line %d: bad %s", line, c) }
		var p Person
		p.Given, p.Surname, p.Maiden = dropSuffix(row[col["FIRST"]]), dropSuffix(row[col["LAST"]]), dropSuffix(row[col["MAIDEN"]])
		if p.Given == "" {
			return nil, bad("FIRST")
		}
		if p.Surname == "" {
			return nil, bad("LAST")
		}
		if p.Maiden == p.Surname {
			p.Maiden = ""
		}
		if p.Birth, err = time.Parse("2006-01-02", row[col["BIRTHDATE"]]); err != nil {
			return nil, bad("BIRTHDATE")
		}
		switch row[col["GENDER"]] {
		case "F":
			p.Female = true
		case "M":
		default:
			return nil, bad("GENDER")
		}
		p.SSN = strings.ReplaceAll(row[col["SSN"]], "-", "")
		if len(p.SSN) != 9 || strings.ContainsFunc(p.SSN, func(r rune) bool { return r < '0' || r > '9' }) {
			return nil, bad("SSN")
		}
		out = append(out, p)
	}
}

// dropSuffix removes the digits Synthea appends to each word of a name.
func dropSuffix(s string) string {
	words := strings.Fields(s)
	for i, w := range words {
		words[i] = strings.TrimRightFunc(w, unicode.IsDigit)
	}
	return strings.Join(words, " ")
}
