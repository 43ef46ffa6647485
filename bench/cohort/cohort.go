// Package cohort generates reproducible synthetic hospital cohorts for mpsi's
// demo, tests and benchmarks: each party's CSV export (with its own column
// names, date layout and identifier noise that normalisation must undo), its
// column mapping, a session spec, and the ground truth (intersection,
// pairwise overlaps, aggregates) computed from the generator's own entity
// ids, independently of mpsi's matching.
//
// With [Config.Realistic], patients get realistic identities (names by
// their US frequencies, birth dates, SSNs, maiden names, twins) and each
// hospital's record of a patient carries identifier errors at configured
// rates (typos, nicknames, maiden names, swapped or shifted dates, missing
// or transposed SSNs, accents); truth_groups.csv then gives every record's
// patient, for measuring linkage quality (package bench/linkage).
//
// Randomness is math/rand/v2 seeded from Config.Seed: inputs only, never
// secrets.
package cohort

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config describes a cohort.
type Config struct {
	Seed    uint64
	Parties int // ≥ 2
	Records int // records per party
	// SharedAll is the fraction of each party's records that belong to
	// patients present at every party.
	SharedAll float64
	// SharedPair is the fraction of each party's records shared with exactly
	// one other party (the next one, cyclically).
	SharedPair float64
	// Noise varies case, accents, whitespace, punctuation and identifier
	// formats between parties, as real exports do.
	Noise bool
	// Mode is the match mode written into the spec ("dh" or "keyed").
	Mode string
	// Group is the dh group written into the spec's match.group when set
	// ("ristretto255" or "x25519"; empty: the spec's default).
	Group string
	// MinCell is written into the spec.
	MinCell int
	// Duplicates adds this many exact duplicate rows to each party's file.
	Duplicates int
	// Aggregation is written into the spec when set ("masked" or
	// "encrypted").
	Aggregation string
	// Realistic, when set, gives patients realistic identities instead of
	// the original ones (names drawn by their US frequencies, birth dates
	// over a realistic age distribution, a unique SSN, maiden names) and
	// records each at each party with the identifier errors at these
	// rates (see [DefaultErrors]). The files gain an SSN column (field
	// "ssn", type id) and truth_groups.csv, which maps every record to
	// its patient. Unset, the output is byte for byte what it always was.
	Realistic *Errors
	// People, with Realistic, are the patients' true identities, taken
	// in order instead of drawn (see [ReadSyntheaPatients]); it must hold
	// at least as many people as the cohort has patients. Twins are then
	// only those the list holds.
	People []Person
	// Keys, when set, is written into the spec as match.keys (an ordered
	// list of match keys, each a list of fields, "field|transform"),
	// replacing match.fields.
	Keys [][]string
}

// Party is one party's generated input.
type Party struct {
	Name    string
	CSV     []byte
	Mapping []byte // JSON mapping file
}

// Truth is the ground truth of a cohort, from entity ids.
type Truth struct {
	Intersection int     `json:"intersection"`
	Pairwise     [][]int `json:"pairwise"`
	VisitsSum    int64   `json:"visits_sum"`
	AgeSum       int64   `json:"age_sum"`   // hospital-a's ages over I
	AgeBands     []int64 `json:"age_bands"` // hospital-a's ages over I by AgeEdges
	Diabetes     int64   `json:"diabetes"`  // hospital-b's diabetes codes over I
}

// Cohort is a generated cohort.
type Cohort struct {
	Spec    []byte // session spec JSON
	Parties []Party
	Truth   Truth
	// Groups is truth_groups.csv (party, record_id, entity: every record
	// with the patient it belongs to) when Config.Realistic is set.
	Groups []byte
}

// AgeEdges are the histogram edges of the generated spec.
var ageEdges = []float64{0, 18, 40, 65, 130}

// DiabetesCode is the SNOMED CT code counted by the generated spec.
const DiabetesCode = "44054006"

var (
	givenNames  = []string{"José", "María", "Zoë", "Søren", "Anaïs", "John", "Mary", "Wei", "Li", "Ahmed", "Fatima", "Olga", "Björn", "Chloé", "Noah", "Emma", "Liam", "Ava", "Lucas", "Mia", "Hannah", "Élodie", "Jürgen", "Siobhán", "Ngozi", "Kenji", "Yuki", "Priya", "Arjun", "Ilse"}
	familyNames = []string{"Álvarez", "Müller", "O'Brien", "Smith", "Nguyen", "García", "Kowalski", "Dubois", "Rossi", "Jensen", "Van der Berg", "Papadopoulos", "Kim", "Silva", "Ivanova", "Öztürk", "Núñez", "Lefèvre", "Schäfer", "Andersson", "Brown", "Wang", "Zhang", "Haddad", "Okafor", "Tanaka", "Sato", "Patel", "Singh", "Novák"}
	otherCodes  = []string{"38341003", "195967001", "49436004", "53741008", "40055000", "233604007"}
)

// Generate builds a cohort in memory. The same Config always gives the same
// bytes, and the same bytes as [GenerateDir].
func Generate(cfg Config) (*Cohort, error) {
	g, err := newGenerator(cfg)
	if err != nil {
		return nil, err
	}
	c := &Cohort{Spec: g.spec, Truth: g.truth}
	for i, name := range g.names {
		var buf bytes.Buffer
		if err := g.writeCSV(i, &buf); err != nil {
			return nil, err
		}
		m, err := g.mapping(i)
		if err != nil {
			return nil, err
		}
		c.Parties = append(c.Parties, Party{Name: name, CSV: buf.Bytes(), Mapping: m})
	}
	if g.id != nil {
		var buf bytes.Buffer
		if err := g.writeGroups(&buf); err != nil {
			return nil, err
		}
		c.Groups = buf.Bytes()
	}
	return c, nil
}

// GenerateDir generates the cohort of cfg straight into dir (created if
// needed): the same files, byte for byte, as [Generate] followed by
// [Cohort.WriteDir], without holding any party's CSV in memory. Memory is
// a compact form of the generator's state: 8 bytes per distinct patient
// (about (SharedAll + Parties·(1 − SharedAll − SharedPair))·Records of
// them), plus, while patients are drawn, a 4-byte slot per patient for
// de-duplication, and, while a party's file is written, 8 bytes per record
// of that party.
//
// Every file is written to a temporary file in dir, synced and renamed into
// place, so an interrupted run leaves no partial file under a final name.
// truth.json is removed first and written last: a directory holding it
// holds a complete cohort.
func GenerateDir(cfg Config, dir string) (*Truth, error) {
	g, err := newGenerator(cfg)
	if err != nil {
		return nil, err
	}
	parties := make([]partyFiles, len(g.names))
	for i, name := range g.names {
		m, err := g.mapping(i)
		if err != nil {
			return nil, err
		}
		parties[i] = partyFiles{name: name, mapping: m, csv: func(w io.Writer) error { return g.writeCSV(i, w) }}
	}
	var groups func(io.Writer) error
	if g.id != nil {
		groups = g.writeGroups
	}
	if err := writeFiles(dir, g.spec, &g.truth, parties, groups); err != nil {
		return nil, err
	}
	t := g.truth
	return &t, nil
}

// generator holds a cohort in compact form. Its random stream is consumed
// in exactly the order of the original in-memory generator (patients;
// every party's attributes and shuffle; every party's rows in party
// order), so that the bytes never change for a given Config; what it does
// not keep (attributes, shuffles) it redraws from a saved copy of the
// stream's state.
type generator struct {
	cfg   Config
	names []string
	rng   *rand.Rand // the main stream
	// people[e] is entity e, packed (see pGiven). Entities are numbered in
	// drawing order: blocks[0], blocks[1], ...
	people []uint64
	blocks []block
	// attrs[i] is the state of the stream where party i's attribute draws
	// begin.
	attrs []rand.PCG
	next  int // the next party whose CSV may be written
	// ents and attrBuf hold the members of the party being written.
	ents, attrBuf []uint32
	spec          []byte
	truth         Truth
	// id draws the identities of a realistic cohort (nil otherwise), and
	// fileEnts[i] is the entity of each row of party i's file, kept for
	// truth_groups.csv.
	id       *identities
	fileEnts [][]uint32
}

// block is a run of entities [lo, hi) present at the same parties.
type block struct {
	lo, hi  int
	parties []int
}

func (b block) in(i int) bool { return slices.Contains(b.parties, i) }

// A person is packed into a uint64 as given-name index (5 bits), family-name
// index (5), birth year − 1900 (7), month − 1 (4), day − 1 (5), sex (1) and
// the given-name suffix (10). Two people are distinct exactly when their
// canonical strings are (see TestPackedPersonIsCanonical), so the packed
// values de-duplicate them.
const (
	pGiven, pFamily, pYear, pMonth, pDay, pSex, pSuffix = 0, 5, 10, 17, 21, 26, 27
)

func field(p uint64, shift, bits uint) int { return int(p >> shift & (1<<bits - 1)) }

func givenOf(p uint64) string {
	return givenNames[field(p, pGiven, 5)] + strconv.Itoa(field(p, pSuffix, 10))
}
func familyOf(p uint64) string { return familyNames[field(p, pFamily, 5)] }
func birthOf(p uint64) time.Time {
	return time.Date(1900+field(p, pYear, 7), time.Month(1+field(p, pMonth, 4)), 1+field(p, pDay, 5), 0, 0, 0, 0, time.UTC)
}
func female(p uint64) bool { return field(p, pSex, 1) == 1 }
func ageOf(p uint64) int   { return min(2025-(1900+field(p, pYear, 7)), 130) }

// drawPerson draws a candidate patient.
func drawPerson(rng *rand.Rand) uint64 {
	// The order of draws is that of the original person literal: given,
	// family, year, month, day, sex, then the suffix.
	g := rng.IntN(len(givenNames))
	f := rng.IntN(len(familyNames))
	y := rng.IntN(125)
	m := rng.IntN(12)
	d := rng.IntN(28)
	s := rng.IntN(2)
	x := rng.IntN(1000)
	return uint64(g)<<pGiven | uint64(f)<<pFamily | uint64(y)<<pYear | uint64(m)<<pMonth | uint64(d)<<pDay | uint64(s)<<pSex | uint64(x)<<pSuffix
}

// Attributes of one party's record, packed into a uint32: visits (6 bits),
// the number of codes (2) and up to three codes of 3 bits each, 0 standing
// for DiabetesCode and k > 0 for otherCodes[k-1].
func drawAttrs(rng *rand.Rand) uint32 {
	a := uint32(rng.IntN(60))
	var cs [3]uint32
	m := 0
	if rng.IntN(10) == 0 {
		cs[m], m = 0, m+1
	}
	for k := rng.IntN(3); k > 0; k-- {
		cs[m], m = uint32(1+rng.IntN(len(otherCodes))), m+1
	}
	rng.Shuffle(m, func(a, b int) { cs[a], cs[b] = cs[b], cs[a] })
	a |= uint32(m) << 6
	for k := 0; k < m; k++ {
		a |= cs[k] << (8 + 3*k)
	}
	return a
}

func visitsOf(a uint32) int64 { return int64(a & 63) }
func codesOf(a uint32) int    { return int(a >> 6 & 3) }
func codeOf(a uint32, k int) string {
	c := a >> (8 + 3*k) & 7
	if c == 0 {
		return DiabetesCode
	}
	return otherCodes[c-1]
}

func newGenerator(cfg Config) (*generator, error) {
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
	g := &generator{cfg: cfg, names: make([]string, n)}
	var err error
	for i := range g.names {
		g.names[i] = "hospital-" + string(rune('a'+i))
	}
	pcg := rand.NewPCG(cfg.Seed, 0x6d707369)
	g.rng = rand.New(pcg)
	shared := int(float64(cfg.Records) * cfg.SharedAll)
	pair := int(float64(cfg.Records) * cfg.SharedPair)
	if n == 2 {
		pair = 0 // with two parties, a pair overlap is the intersection
	}
	// Entities: shared by all, then for each party i a block shared with
	// i+1, then each party's own, filling it up to Records.
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	g.blocks = append(g.blocks, block{0, shared, all})
	for i := 0; i < n; i++ {
		lo := shared + i*pair
		g.blocks = append(g.blocks, block{lo, lo + pair, []int{i, (i + 1) % n}})
	}
	own := max(0, cfg.Records-shared-2*pair)
	for i := 0; i < n; i++ {
		lo := shared + n*pair + i*own
		g.blocks = append(g.blocks, block{lo, lo + own, []int{i}})
	}
	total := shared + n*pair + n*own
	if total >= math.MaxUint32/2 {
		return nil, errors.New("cohort: too many records")
	}
	if cfg.People != nil && cfg.Realistic == nil {
		return nil, errors.New("cohort: People needs Realistic")
	}
	if cfg.People != nil && total > len(cfg.People) {
		return nil, fmt.Errorf("cohort: %d patients needed, People holds %d", total, len(cfg.People))
	}
	if cfg.Realistic != nil {
		if g.id, err = newIdentities(cfg.Seed, *cfg.Realistic, total); err != nil {
			return nil, err
		}
		g.id.people = cfg.People
		g.fileEnts = make([][]uint32, n)
	} else {
		g.drawPeople(total)
	}
	// Attributes: draw them once to move the stream on and to sum the
	// ground truth; writeCSV draws them again from the saved state.
	g.attrs = make([]rand.PCG, n)
	visits, diabetes := int64(0), int64(0)
	for i := 0; i < n; i++ {
		g.attrs[i] = *pcg
		k := 0
		for _, b := range g.blocks {
			if !b.in(i) {
				continue
			}
			for e := b.lo; e < b.hi; e++ {
				a := drawAttrs(g.rng)
				k++
				if len(b.parties) < n {
					continue
				}
				visits += visitsOf(a)
				for c := 0; i == 1 && c < codesOf(a); c++ {
					if codeOf(a, c) == DiabetesCode {
						diabetes++
					}
				}
			}
		}
		g.rng.Shuffle(k, func(int, int) {})
	}
	// Ground truth from entity ids.
	t := &g.truth
	t.VisitsSum, t.Diabetes = visits, diabetes
	t.Pairwise = make([][]int, n)
	for i := range t.Pairwise {
		t.Pairwise[i] = make([]int, n)
	}
	t.AgeBands = make([]int64, len(ageEdges)-1)
	for _, b := range g.blocks {
		for _, i := range b.parties {
			for _, j := range b.parties {
				t.Pairwise[i][j] += b.hi - b.lo
			}
		}
		if len(b.parties) < n {
			continue
		}
		t.Intersection += b.hi - b.lo
		for e := b.lo; e < b.hi; e++ {
			age := g.age(uint32(e))
			t.AgeSum += int64(age)
			for k := 0; k < len(ageEdges)-1; k++ {
				if float64(age) < ageEdges[k+1] || k == len(ageEdges)-2 {
					t.AgeBands[k]++
					break
				}
			}
		}
	}
	match := map[string]any{"fields": []string{"given_name", "family_name", "birth_date", "sex"}, "mode": cfg.Mode}
	if cfg.Keys != nil {
		delete(match, "fields")
		match["keys"] = cfg.Keys
	}
	if cfg.Group != "" {
		match["group"] = cfg.Group
	}
	fields := map[string]string{"given_name": "name", "family_name": "name", "birth_date": "date", "sex": "sex",
		"visits": "number", "age": "number", "condition_codes": "codes"}
	if g.id != nil {
		fields["ssn"] = "id"
	}
	spec := map[string]any{
		"id":      fmt.Sprintf("cohort-%d", cfg.Seed),
		"parties": g.names,
		"fields":  fields,
		"match":   match,
		"reveal":  []string{"cardinality", "pairwise", "aggregates"},
		"aggregates": []map[string]any{
			{"name": "shared", "kind": "count"},
			{"name": "visits", "kind": "sum", "field": "visits", "min": 0, "max": 10000},
			{"name": "age", "kind": "mean", "field": "age", "from": []string{g.names[0]}, "min": 0, "max": 130},
			{"name": "age_bands", "kind": "histogram", "field": "age", "from": []string{g.names[0]}, "edges": ageEdges},
			{"name": "diabetes", "kind": "count_if", "field": "condition_codes", "contains": DiabetesCode, "from": []string{g.names[1]}},
		},
		"min_cell": cfg.MinCell,
	}
	if cfg.Aggregation != "" {
		spec["aggregation"] = cfg.Aggregation
	}
	if g.spec, err = json.MarshalIndent(spec, "", "  "); err != nil {
		return nil, err
	}
	return g, nil
}

// age is entity e's age in the ground truth.
func (g *generator) age(e uint32) int {
	if g.id != nil {
		return g.id.truth(e).age()
	}
	return ageOf(g.people[e])
}

// drawPeople draws total distinct patients into g.people, redrawing any
// candidate equal to one already drawn. The set is an open-addressing
// table of 1-based indices into g.people, dropped when done.
func (g *generator) drawPeople(total int) {
	g.people = make([]uint64, 0, total)
	bits := uint(4)
	for 1<<bits < total+total/3 {
		bits++
	}
	table := make([]uint32, 1<<bits)
	mask := uint64(len(table) - 1)
	for len(g.people) < total {
		p := drawPerson(g.rng)
		h := p * 0x9e3779b97f4a7c15 >> (64 - bits)
		for {
			slot := table[h]
			if slot == 0 {
				g.people = append(g.people, p)
				table[h] = uint32(len(g.people))
				break
			}
			if g.people[slot-1] == p {
				break // seen: draw again
			}
			h = (h + 1) & mask
		}
	}
}

// Party export styles: column names, date layouts, sex codes.
type style struct {
	cols                 [8]string // id, given, family, birth, sex, visits, age, codes
	dateLayout, goLayout string
	male, female, sep    string
}

var styles = []style{
	{[8]string{"record_id", "given_name", "family_name", "birth_date", "sex", "visits", "age", "condition_codes"}, "", "2006-01-02", "M", "F", ";"},
	{[8]string{"MRN", "FIRST", "LAST", "BIRTHDATE", "GENDER", "VISITS", "AGE", "CONDITION_CODES"}, "MM/DD/YYYY", "01/02/2006", "male", "female", "|"},
	{[8]string{"PatNr", "Vorname", "Nachname", "Geburtsdatum", "Geschlecht", "Besuche", "Alter", "Diagnosen"}, "DD.MM.YYYY", "02.01.2006", "m", "w", ","},
	{[8]string{"id", "prenom", "nom", "naissance", "sexe", "visites", "age", "codes"}, "YYYYMMDD", "20060102", "1", "2", " "},
}

// members redraws party i's attributes from their saved stream state and
// shuffles them as the original generator did: entity and attributes of
// the party's records in file order. The slices are reused by the next
// call.
func (g *generator) members(i int) ([]uint32, []uint32) {
	size := 0
	for _, b := range g.blocks {
		if b.in(i) {
			size += b.hi - b.lo
		}
	}
	if cap(g.ents) < size {
		g.ents, g.attrBuf = make([]uint32, 0, size), make([]uint32, 0, size)
	}
	src := g.attrs[i]
	rng := rand.New(&src)
	ents, attrs := g.ents[:0], g.attrBuf[:0]
	for _, b := range g.blocks {
		if !b.in(i) {
			continue
		}
		for e := b.lo; e < b.hi; e++ {
			ents = append(ents, uint32(e))
			attrs = append(attrs, drawAttrs(rng))
		}
	}
	rng.Shuffle(len(ents), func(a, b int) {
		ents[a], ents[b] = ents[b], ents[a]
		attrs[a], attrs[b] = attrs[b], attrs[a]
	})
	return ents, attrs
}

// ssnColumns are the SSN column's names by style.
var ssnColumns = []string{"ssn", "SSN", "SVNR", "nir"}

// streamFormat tags the stream of a realistic record's format noise.
const streamFormat = 0x666d << 48

// styleIndex is the index into styles of party i's export style.
func (g *generator) styleIndex(i int) int {
	if !g.cfg.Noise {
		return 0
	}
	return i % len(styles)
}

func (g *generator) style(i int) style {
	st := styles[g.styleIndex(i)]
	if st.female == "w" {
		// Map German "w" through the mapping? Keep codes normalisation understands.
		st.female = "f"
	}
	return st
}

// writeCSV writes party i's CSV export to w. Parties must be written in
// order, each once: their rows continue the generator's random stream.
func (g *generator) writeCSV(i int, out io.Writer) error {
	if i != g.next {
		return fmt.Errorf("cohort: internal error: party %d written out of order", i)
	}
	g.next++
	ents, attrs := g.members(i)
	st := g.style(i)
	name, rng := g.names[i], g.rng
	w := csv.NewWriter(out)
	header := st.cols[:]
	if g.id != nil {
		header = append(header, ssnColumns[g.styleIndex(i)])
		g.fileEnts[i] = g.fileEnts[i][:0]
	}
	if err := w.Write(header); err != nil {
		return err
	}
	var row [8]string
	var id, codes []byte
	write := func(k int, e, a uint32) error {
		var given, family, birth, ssn string
		var isFemale bool
		var years int
		if g.id != nil {
			t := g.id.truth(e)
			r, _, _ := g.id.record(i, e, t)
			given, family, birth, isFemale, years = r.given, r.surname, r.birth.Format(st.goLayout), r.female, t.age()
			ssn = ssnFormat(g.styleIndex(i), r.ssn)
			if g.cfg.Noise {
				// Case, spaces and accents, from the record's own stream.
				nrng := rand.New(rand.NewPCG(g.cfg.Seed, streamFormat|uint64(i)<<32|uint64(e)))
				given, family = noisy(nrng, given), noisy(nrng, family)
			}
			g.fileEnts[i] = append(g.fileEnts[i], e)
		} else {
			p := g.people[e]
			given, family, birth, isFemale, years = givenOf(p), familyOf(p), birthOf(p).Format(st.goLayout), female(p), ageOf(p)
			if g.cfg.Noise {
				given, family = noisy(rng, given), noisy(rng, family)
			}
		}
		sex := st.male
		if isFemale {
			sex = st.female
		}
		age := ""
		if i == 0 || rng.IntN(2) == 0 {
			age = strconv.Itoa(years)
		}
		// name-%07d
		id = append(append(id[:0], name...), '-')
		ks := strconv.Itoa(k)
		for pad := len(ks); pad < 7; pad++ {
			id = append(id, '0')
		}
		id = append(id, ks...)
		codes = codes[:0]
		for c := 0; c < codesOf(a); c++ {
			if c > 0 {
				codes = append(codes, st.sep...)
			}
			codes = append(codes, codeOf(a, c)...)
		}
		row = [8]string{string(id), given, family, birth, sex,
			strconv.FormatInt(visitsOf(a), 10), age, string(codes)}
		if g.id != nil {
			return w.Write(append(row[:], ssn))
		}
		return w.Write(row[:])
	}
	for k := range ents {
		if err := write(k, ents[k], attrs[k]); err != nil {
			return err
		}
	}
	for d := 0; d < g.cfg.Duplicates && len(ents) > 0; d++ {
		k := rng.IntN(len(ents))
		if err := write(len(ents)+d, ents[k], attrs[k]); err != nil {
			return err
		}
	}
	w.Flush()
	return w.Error()
}

// mapping is party i's JSON mapping file.
func (g *generator) mapping(i int) ([]byte, error) {
	st := g.style(i)
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
	if g.id != nil {
		m["ssn"] = map[string]string{"column": ssnColumns[g.styleIndex(i)]}
	}
	return json.MarshalIndent(m, "", "  ")
}

// noisy varies case, accents, whitespace and apostrophes the way hospital
// exports differ; normalisation must undo every change.
func noisy(rng *rand.Rand, s string) string {
	switch rng.IntN(5) {
	case 0:
		s = strings.ToUpper(s)
	case 1:
		s = strings.ToLower(s)
	case 2:
		s = "  " + strings.ReplaceAll(s, " ", "   ") + " "
	case 3:
		s = stripAccents(s)
	}
	if rng.IntN(4) == 0 {
		s = strings.ReplaceAll(s, "'", "")
	}
	return s
}

var accents = strings.NewReplacer("á", "a", "é", "e", "í", "i", "ó", "o", "ú", "u", "ñ", "n", "ü", "u", "ö", "o", "ä", "a", "ë", "e", "ï", "i", "è", "e", "Á", "A", "É", "E", "Ö", "O", "Ü", "U", "Å", "A", "å", "a", "Ø", "O", "ø", "o")

func stripAccents(s string) string { return accents.Replace(s) }

// WriteDir writes spec.json, truth.json and, for each party, NAME.csv and
// NAME.map.json into dir, each atomically as [GenerateDir] does.
func (c *Cohort) WriteDir(dir string) error {
	parties := make([]partyFiles, len(c.Parties))
	for i, p := range c.Parties {
		parties[i] = partyFiles{name: p.Name, mapping: p.Mapping, csv: func(w io.Writer) error {
			_, err := w.Write(p.CSV)
			return err
		}}
	}
	var groups func(io.Writer) error
	if c.Groups != nil {
		groups = func(w io.Writer) error { _, err := w.Write(c.Groups); return err }
	}
	return writeFiles(dir, c.Spec, &c.Truth, parties, groups)
}

// TruthGroupsFile is the name of the file mapping each record of a
// realistic cohort to its patient.
const TruthGroupsFile = "truth_groups.csv"

// writeGroups writes truth_groups.csv: a header, then one row per record
// of every party's file, in file order: party, record_id, entity. The
// entity is the patient's number in the cohort; two records are the same
// patient exactly when their entities are equal.
func (g *generator) writeGroups(out io.Writer) error {
	if g.next != len(g.names) {
		return fmt.Errorf("cohort: internal error: groups written before every party")
	}
	w := csv.NewWriter(out)
	if err := w.Write([]string{"party", "record_id", "entity"}); err != nil {
		return err
	}
	var id []byte
	for i, name := range g.names {
		for k, e := range g.fileEnts[i] {
			id = fmt.Appendf(id[:0], "%s-%07d", name, k)
			if err := w.Write([]string{name, string(id), strconv.FormatUint(uint64(e), 10)}); err != nil {
				return err
			}
		}
	}
	w.Flush()
	return w.Error()
}

// partyFiles is what writeFiles writes for a party.
type partyFiles struct {
	name    string
	mapping []byte
	csv     func(io.Writer) error
}

// writeFiles writes a cohort's files into dir: truth.json is removed first
// and written last, every file goes through writeAtomic.
func writeFiles(dir string, spec []byte, truth *Truth, parties []partyFiles, groups func(io.Writer) error) error {
	t, err := json.MarshalIndent(truth, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cohort: %w", err)
	}
	truthPath := filepath.Join(dir, "truth.json")
	if err := os.Remove(truthPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cohort: %w", err)
	}
	// A stale truth_groups.csv would describe another cohort.
	if err := os.Remove(filepath.Join(dir, TruthGroupsFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cohort: %w", err)
	}
	bytesOf := func(b []byte) func(io.Writer) error {
		return func(w io.Writer) error { _, err := w.Write(b); return err }
	}
	for _, p := range parties {
		if err := writeAtomic(filepath.Join(dir, p.name+".csv"), p.csv); err != nil {
			return err
		}
		if err := writeAtomic(filepath.Join(dir, p.name+".map.json"), bytesOf(p.mapping)); err != nil {
			return err
		}
	}
	if groups != nil {
		if err := writeAtomic(filepath.Join(dir, TruthGroupsFile), groups); err != nil {
			return err
		}
	}
	if err := writeAtomic(filepath.Join(dir, "spec.json"), bytesOf(spec)); err != nil {
		return err
	}
	return writeAtomic(truthPath, bytesOf(t))
}

// writeAtomic writes path through a buffered temporary file beside it,
// which it syncs and renames into place; on failure it removes the
// temporary file.
func writeAtomic(path string, fill func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("cohort: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			err = fmt.Errorf("cohort: writing %s: %w", filepath.Base(path), err)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := fill(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
