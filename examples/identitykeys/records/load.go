package records

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/mpsi-dev/mpsi/examples/identitykeys/identity"
)

// SyntheaSubdir is the Synthea sample used, relative to the shared data
// folder's synthea directory.
const SyntheaSubdir = "sample_1k_apr2020"

// Locate finds the Synthea sample for a module whose root is at or above
// dir: <moduleroot>/../shared/data/synthea/sample_1k_apr2020. It returns
// ok=false when there is no such folder (callers then generate patients).
func Locate(dir string) (path string, ok bool) {
	root, err := moduleRoot(dir)
	if err != nil {
		return "", false
	}
	p := filepath.Join(filepath.Dir(root), "shared", "data", "synthea", SyntheaSubdir)
	if st, err := os.Stat(filepath.Join(p, "patients.csv")); err != nil || st.IsDir() {
		return "", false
	}
	return p, true
}

func moduleRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("records: no go.mod found")
		}
		dir = parent
	}
}

// Split distributes patients over two hospitals: patient i goes to the
// first hospital only when i%3 == 0, to the second only when i%3 == 1, and to
// both when i%3 == 2, in which case its conditions alternate between them.
// So a third of the patients have records at both hospitals.
func Split(hospitals [2]string, patients []Patient) [2]*DB {
	dbs := [2]*DB{{Hospital: hospitals[0]}, {Hospital: hospitals[1]}}
	for i, p := range patients {
		switch i % 3 {
		case 0:
			dbs[0].Patients = append(dbs[0].Patients, p)
		case 1:
			dbs[1].Patients = append(dbs[1].Patients, p)
		default:
			a, b := p, p
			a.Conditions, b.Conditions = nil, nil
			for k, c := range p.Conditions {
				if k%2 == 0 {
					a.Conditions = append(a.Conditions, c)
				} else {
					b.Conditions = append(b.Conditions, c)
				}
			}
			dbs[0].Patients = append(dbs[0].Patients, a)
			dbs[1].Patients = append(dbs[1].Patients, b)
		}
	}
	return dbs
}

// LoadSynthea reads patients.csv and conditions.csv of a Synthea CSV export
// in dir. Rows whose identity fields do not normalise are an error naming the
// line; nothing is dropped silently.
func LoadSynthea(dir string) ([]Patient, error) {
	pf, err := os.Open(filepath.Join(dir, "patients.csv"))
	if err != nil {
		return nil, fmt.Errorf("records: %w", err)
	}
	defer pf.Close()
	patients, byID, err := readPatients(pf)
	if err != nil {
		return nil, fmt.Errorf("records: patients.csv: %w", err)
	}
	cf, err := os.Open(filepath.Join(dir, "conditions.csv"))
	if err != nil {
		return nil, fmt.Errorf("records: %w", err)
	}
	defer cf.Close()
	if err := readConditions(cf, patients, byID); err != nil {
		return nil, fmt.Errorf("records: conditions.csv: %w", err)
	}
	return patients, nil
}

func columns(header []string, want ...string) (map[string]int, error) {
	idx := make(map[string]int, len(want))
	for i, h := range header {
		idx[strings.ToUpper(strings.TrimSpace(h))] = i
	}
	out := make(map[string]int, len(want))
	for _, w := range want {
		i, ok := idx[w]
		if !ok {
			return nil, fmt.Errorf("missing column %s", w)
		}
		out[w] = i
	}
	return out, nil
}

func readPatients(r io.Reader) ([]Patient, map[string]int, error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err != nil {
		return nil, nil, err
	}
	col, err := columns(header, "ID", "BIRTHDATE", "SSN", "FIRST", "LAST", "GENDER")
	if err != nil {
		return nil, nil, err
	}
	var out []Patient
	byID := map[string]int{}
	for {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		line, _ := cr.FieldPos(0)
		p := Patient{
			LocalID: row[col["ID"]],
			Identity: identity.Fields{
				Given: row[col["FIRST"]], Family: row[col["LAST"]],
				BirthDate: row[col["BIRTHDATE"]], NationalID: row[col["SSN"]],
			},
			Sex: row[col["GENDER"]],
		}
		if _, err := identity.Normalize(p.Identity); err != nil {
			return nil, nil, fmt.Errorf("line %d: %w", line, err)
		}
		if _, dup := byID[p.LocalID]; dup {
			return nil, nil, fmt.Errorf("line %d: repeated patient id", line)
		}
		byID[p.LocalID] = len(out)
		out = append(out, p)
	}
	return out, byID, nil
}

func readConditions(r io.Reader, patients []Patient, byID map[string]int) error {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err != nil {
		return err
	}
	col, err := columns(header, "START", "STOP", "PATIENT", "CODE", "DESCRIPTION")
	if err != nil {
		return err
	}
	for {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		i, ok := byID[row[col["PATIENT"]]]
		if !ok {
			line, _ := cr.FieldPos(0)
			return fmt.Errorf("line %d: condition of an unknown patient", line)
		}
		patients[i].Conditions = append(patients[i].Conditions, Condition{
			Start: row[col["START"]], Stop: row[col["STOP"]],
			Code: row[col["CODE"]], Description: row[col["DESCRIPTION"]],
		})
	}
}

// Generate makes n deterministic synthetic patients for when the Synthea
// data is absent. Names carry a numeric suffix, as Synthea's do, so they are
// distinct; national IDs are in the 999-xx-xxxx test range.
func Generate(n int) []Patient {
	given := []string{"Ada", "Bruno", "Chiara", "Dmitri", "Elif", "Farah", "Goran", "Hana", "Ines", "José Luis"}
	family := []string{"Okafor", "Lindqvist", "Moreau", "Tanaka", "García", "Novak", "Silva", "O'Brien", "Kowalski", "Nguyen"}
	conds := []Condition{
		{Code: "44054006", Description: "Diabetes"},
		{Code: "38341003", Description: "Hypertension"},
		{Code: "195662009", Description: "Acute viral pharyngitis (disorder)"},
		{Code: "10509002", Description: "Acute bronchitis (disorder)"},
		{Code: "40055000", Description: "Chronic sinusitis (disorder)"},
	}
	out := make([]Patient, n)
	for i := range n {
		p := Patient{
			LocalID: fmt.Sprintf("gen-%06d", i),
			Identity: identity.Fields{
				Given:      fmt.Sprintf("%s%d", given[i%len(given)], 100+i),
				Family:     fmt.Sprintf("%s%d", family[(i/len(given))%len(family)], 100+(i*7)%900),
				BirthDate:  fmt.Sprintf("%04d-%02d-%02d", 1940+i%70, 1+i%12, 1+i%28),
				NationalID: fmt.Sprintf("999-%02d-%04d", (i/10000)%100, i%10000),
			},
			Sex: []string{"F", "M"}[i%2],
		}
		for k := range 1 + i%4 {
			c := conds[(i+k)%len(conds)]
			c.Start = fmt.Sprintf("%04d-%02d-01", 2000+(i+k)%20, 1+k%12)
			p.Conditions = append(p.Conditions, c)
		}
		out[i] = p
	}
	return out
}
