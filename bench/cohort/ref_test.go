package cohort

// The generator as it was before the streaming rewrite, frozen verbatim
// (identifiers prefixed with ref) as the oracle for byte-identity tests:
// Generate and GenerateDir must keep producing exactly these bytes.

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

type refPerson struct {
	given, family string
	birth         time.Time
	sex           string
	age           int
}

// ref: Generate builds a cohort. The same Config always gives the same bytes.
func refGenerate(cfg Config) (*Cohort, error) {
	n := cfg.Parties
	if n < 2 || n > 26 {
		return nil, errors.New("cohort: parties must be between 2 and 26")
	}
	if cfg.Records < 0 || cfg.SharedAll < 0 || cfg.SharedPair < 0 || cfg.SharedAll+cfg.SharedPair > 1 {
		return nil, errors.New("cohort: invalid records or overlap fractions")
	}
	if cfg.Mode == "" {
		cfg.Mode = "dh"
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6d707369))
	shared := int(float64(cfg.Records) * cfg.SharedAll)
	pair := int(float64(cfg.Records) * cfg.SharedPair)
	if n == 2 {
		pair = 0 // with two parties, a pair overlap is the intersection
	}
	// Entities: shared by all, then for each party i a block shared with
	// i+1, then each party's own.
	var people []refPerson
	seen := map[string]bool{}
	newPerson := func() refPerson {
		for {
			p := refPerson{
				given:  givenNames[rng.IntN(len(givenNames))],
				family: familyNames[rng.IntN(len(familyNames))],
				birth:  time.Date(1900+rng.IntN(125), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC),
				sex:    []string{"M", "F"}[rng.IntN(2)],
			}
			p.age = 2025 - p.birth.Year()
			if p.age > 130 {
				p.age = 130
			}
			// A suffix keeps identities distinct, as in Synthea exports.
			p.given += strconv.Itoa(rng.IntN(1000))
			k := refCanonical(p)
			if !seen[k] {
				seen[k] = true
				return p
			}
		}
	}
	members := make([][]int, n) // entity indices per party
	for k := 0; k < shared; k++ {
		people = append(people, newPerson())
		for i := 0; i < n; i++ {
			members[i] = append(members[i], len(people)-1)
		}
	}
	for i := 0; i < n; i++ {
		for k := 0; k < pair; k++ {
			people = append(people, newPerson())
			members[i] = append(members[i], len(people)-1)
			members[(i+1)%n] = append(members[(i+1)%n], len(people)-1)
		}
	}
	for i := 0; i < n; i++ {
		for len(members[i]) < cfg.Records {
			people = append(people, newPerson())
			members[i] = append(members[i], len(people)-1)
		}
	}
	// Attributes per party and entity.
	visits := make([]map[int]int64, n)
	codes := make([]map[int][]string, n)
	for i := 0; i < n; i++ {
		visits[i], codes[i] = map[int]int64{}, map[int][]string{}
		for _, e := range members[i] {
			visits[i][e] = int64(rng.IntN(60))
			var cs []string
			if rng.IntN(10) == 0 {
				cs = append(cs, DiabetesCode)
			}
			for k := rng.IntN(3); k > 0; k-- {
				cs = append(cs, otherCodes[rng.IntN(len(otherCodes))])
			}
			rng.Shuffle(len(cs), func(a, b int) { cs[a], cs[b] = cs[b], cs[a] })
			codes[i][e] = cs
		}
		rng.Shuffle(len(members[i]), func(a, b int) { members[i][a], members[i][b] = members[i][b], members[i][a] })
	}
	c := &Cohort{}
	names := make([]string, n)
	for i := range names {
		names[i] = "hospital-" + string(rune('a'+i))
	}
	// Ground truth from entity ids.
	in := make([]map[int]bool, n)
	for i := range in {
		in[i] = map[int]bool{}
		for _, e := range members[i] {
			in[i][e] = true
		}
	}
	c.Truth.Pairwise = make([][]int, n)
	for i := range c.Truth.Pairwise {
		c.Truth.Pairwise[i] = make([]int, n)
		for j := range c.Truth.Pairwise[i] {
			for e := range in[i] {
				if in[j][e] {
					c.Truth.Pairwise[i][j]++
				}
			}
		}
	}
	c.Truth.AgeBands = make([]int64, len(ageEdges)-1)
	for e := range in[0] {
		all := true
		for i := 1; i < n; i++ {
			all = all && in[i][e]
		}
		if !all {
			continue
		}
		c.Truth.Intersection++
		for i := 0; i < n; i++ {
			c.Truth.VisitsSum += visits[i][e]
		}
		age := people[e].age
		c.Truth.AgeSum += int64(age)
		for b := 0; b < len(ageEdges)-1; b++ {
			if float64(age) < ageEdges[b+1] || b == len(ageEdges)-2 {
				c.Truth.AgeBands[b]++
				break
			}
		}
		for _, code := range codes[1][e] {
			if code == DiabetesCode {
				c.Truth.Diabetes++
			}
		}
	}
	for i := 0; i < n; i++ {
		p, err := refWriteParty(rng, i, names[i], people, members[i], visits[i], codes[i], cfg)
		if err != nil {
			return nil, err
		}
		c.Parties = append(c.Parties, p)
	}
	spec := map[string]any{
		"id":      fmt.Sprintf("cohort-%d", cfg.Seed),
		"parties": names,
		"fields": map[string]string{"given_name": "name", "family_name": "name", "birth_date": "date", "sex": "sex",
			"visits": "number", "age": "number", "condition_codes": "codes"},
		"match":  map[string]any{"fields": []string{"given_name", "family_name", "birth_date", "sex"}, "mode": cfg.Mode},
		"reveal": []string{"cardinality", "pairwise", "aggregates"},
		"aggregates": []map[string]any{
			{"name": "shared", "kind": "count"},
			{"name": "visits", "kind": "sum", "field": "visits", "min": 0, "max": 10000},
			{"name": "age", "kind": "mean", "field": "age", "from": []string{names[0]}, "min": 0, "max": 130},
			{"name": "age_bands", "kind": "histogram", "field": "age", "from": []string{names[0]}, "edges": ageEdges},
			{"name": "diabetes", "kind": "count_if", "field": "condition_codes", "contains": DiabetesCode, "from": []string{names[1]}},
		},
		"min_cell": cfg.MinCell,
	}
	if cfg.Aggregation != "" {
		spec["aggregation"] = cfg.Aggregation
	}
	var err error
	if c.Spec, err = json.MarshalIndent(spec, "", "  "); err != nil {
		return nil, err
	}
	return c, nil
}

func refCanonical(p refPerson) string {
	return strings.ToLower(p.given) + "|" + strings.ToLower(p.family) + "|" + p.birth.Format("2006-01-02") + "|" + p.sex
}

func refWriteParty(rng *rand.Rand, i int, name string, people []refPerson, members []int, visits map[int]int64, codes map[int][]string, cfg Config) (Party, error) {
	st := styles[i%len(styles)]
	if !cfg.Noise {
		st = styles[0]
	}
	if st.female == "w" {
		// Map German "w" through the mapping? Keep codes normalisation understands.
		st.female = "f"
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write(st.cols[:])
	write := func(k, e int) error {
		p := people[e]
		given, family := p.given, p.family
		if cfg.Noise {
			given, family = refNoisy(rng, given), refNoisy(rng, family)
		}
		sex := st.male
		if p.sex == "F" {
			sex = st.female
		}
		age := ""
		if i == 0 || rng.IntN(2) == 0 {
			age = strconv.Itoa(p.age)
		}
		return w.Write([]string{fmt.Sprintf("%s-%07d", name, k), given, family, p.birth.Format(st.goLayout), sex,
			strconv.FormatInt(visits[e], 10), age, strings.Join(codes[e], st.sep)})
	}
	for k, e := range members {
		if err := write(k, e); err != nil {
			return Party{}, err
		}
	}
	for d := 0; d < cfg.Duplicates && len(members) > 0; d++ {
		if err := write(len(members)+d, members[rng.IntN(len(members))]); err != nil {
			return Party{}, err
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return Party{}, err
	}
	m := map[string]map[string]string{
		"record_id":       {"column": st.cols[0]},
		"given_name":      {"column": st.cols[1]},
		"family_name":     {"column": st.cols[2]},
		"birth_date":      {"column": st.cols[3]},
		"sex":             {"column": st.cols[4]},
		"visits":          {"column": st.cols[5]},
		"age":             {"column": st.cols[6]},
		"condition_codes": {"column": st.cols[7], "separator": st.sep},
	}
	if st.dateLayout != "" {
		m["birth_date"]["format"] = st.dateLayout
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Party{}, err
	}
	return Party{Name: name, CSV: buf.Bytes(), Mapping: mb}, nil
}

// noisy varies case, accents, whitespace and apostrophes the way hospital
// exports differ; normalisation must undo every change.
func refNoisy(rng *rand.Rand, s string) string {
	switch rng.IntN(5) {
	case 0:
		s = strings.ToUpper(s)
	case 1:
		s = strings.ToLower(s)
	case 2:
		s = "  " + strings.ReplaceAll(s, " ", "   ") + " "
	case 3:
		s = refStripAccents(s)
	}
	if rng.IntN(4) == 0 {
		s = strings.ReplaceAll(s, "'", "")
	}
	return s
}

func refStripAccents(s string) string {
	r := strings.NewReplacer("á", "a", "é", "e", "í", "i", "ó", "o", "ú", "u", "ñ", "n", "ü", "u", "ö", "o", "ä", "a", "ë", "e", "ï", "i", "è", "e", "Á", "A", "É", "E", "Ö", "O", "Ü", "U", "Å", "A", "å", "a", "Ø", "O", "ø", "o")
	return r.Replace(s)
}

// ref: WriteDir writes spec.json, truth.json and, for each party, NAME.csv and
// NAME.map.json into dir.
func refWriteDir(c *Cohort, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := map[string][]byte{"spec.json": c.Spec}
	t, err := json.MarshalIndent(c.Truth, "", "  ")
	if err != nil {
		return err
	}
	files["truth.json"] = t
	for _, p := range c.Parties {
		files[p.Name+".csv"] = p.CSV
		files[p.Name+".map.json"] = p.Mapping
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("cohort: %w", err)
		}
	}
	return nil
}
