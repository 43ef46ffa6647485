package cohort

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Errors are the identifier errors of a realistic cohort ([Config.Realistic]),
// as rates. Each is the probability that one party's record of a patient
// carries the error, drawn independently per record (so two hospitals
// rarely carry the same error), among the records it can apply to: a
// nickname only replaces a given name that has one, a maiden name only a
// surname that changed, a day/month swap only a date with day ≤ 12 and day
// ≠ month, an accent only a name that has one.
//
// [DefaultErrors] are the rates of the benchmark; bench/README.md gives
// their sources.
type Errors struct {
	// Typo is the rate of one keyboard error in each name (given name and
	// surname, separately): a letter inserted, deleted, replaced by a
	// neighbouring key, or two adjacent letters transposed, never in the
	// first letter (misspellings rarely touch it: Pollock & Zamora, CACM
	// 27(4), 1984).
	Typo float64
	// Nickname is the rate at which a given name with a common nickname
	// ("William" → "Bill") is recorded as the nickname.
	Nickname float64
	// MaidenName is the rate at which the record of a woman whose surname
	// changed at marriage carries her maiden surname instead.
	MaidenName float64
	// DayMonthSwap is the rate at which a birth date with day ≤ 12 and
	// day ≠ month is recorded with day and month swapped.
	DayMonthSwap float64
	// DateOffByOne is the rate at which a birth date is recorded one day
	// early or late.
	DateOffByOne float64
	// MissingSSN is the rate at which the SSN is left empty.
	MissingSSN float64
	// SSNTransposition is the rate at which a recorded SSN has two
	// adjacent, different digits swapped.
	SSNTransposition float64
	// Accent is the rate at which a name with accented letters is written
	// in ASCII: accents dropped ("García" → "Garcia", which normalisation
	// undoes) or, half the time for ä, ö and ü, transliterated the German
	// way ("Müller" → "Mueller", which it does not).
	Accent float64
}

// DefaultErrors returns the error rates of the linkage-quality benchmark
// (bench/README.md, "Linkage quality", says where each comes from).
func DefaultErrors() Errors {
	return Errors{
		Typo:             0.03,
		Nickname:         0.10,
		MaidenName:       0.25,
		DayMonthSwap:     0.01,
		DateOffByOne:     0.01,
		MissingSSN:       0.10,
		SSNTransposition: 0.01,
		Accent:           0.30,
	}
}

func (e Errors) validate() error {
	for _, r := range []struct {
		name string
		v    float64
	}{{"typo", e.Typo}, {"nickname", e.Nickname}, {"maiden name", e.MaidenName}, {"day/month swap", e.DayMonthSwap},
		{"date off by one", e.DateOffByOne}, {"missing SSN", e.MissingSSN}, {"SSN transposition", e.SSNTransposition}, {"accent", e.Accent}} {
		if !(r.v >= 0 && r.v <= 1) {
			return fmt.Errorf("cohort: %s rate %v is not in [0, 1]", r.name, r.v)
		}
	}
	return nil
}

// maidenShare is the share of women aged 18 or more whose surname changed
// at marriage, so that a maiden surname exists: 54% of the women of
// Synthea's 1k sample (331 of 609 in sample_1k_apr2020/patients.csv)
// carry one.
const maidenShare = 0.54

// refYear is the year ages are counted to, as in the original generator.
const refYear = 2025

// ageWeight is the relative number of people of each age (years 0..99):
// flat to 59, then falling, roughly the shape of the US population
// pyramid (Census 2020).
func ageWeight(a int) float64 {
	switch {
	case a < 60:
		return 1
	case a < 85:
		return 1 - 0.8*float64(a-60)/25
	default:
		return 0.15 * float64(100-a) / 15
	}
}

// person is a realistic identity: the truth, or one party's record of it.
type person struct {
	given, surname string
	maiden         string // "" when the surname never changed
	birth          time.Time
	female         bool
	ssn            string // nine digits; "" when missing
}

func (p person) age() int { return min(refYear-p.birth.Year(), 130) }

// noise is the set of errors applied to one record.
type noise uint16

const (
	noiseGivenTypo noise = 1 << iota
	noiseSurnameTypo
	noiseNickname
	noiseMaiden
	noiseGivenAccent
	noiseSurnameAccent
	noiseDayMonthSwap
	noiseOffByOne
	noiseMissingSSN
	noiseSSNTransposition
)

// identities draws the realistic identities of a cohort: entity e's
// identity and party i's record of it are functions of (seed, e) and
// (seed, i, e), so they can be drawn in any order, at any time.
type identities struct {
	seed   uint64
	errs   Errors
	names  *nameTables
	ageCum []float64
	// people, when set, are the identities (Config.People).
	people []Person
	// half is half the number of entities: entity j < half and j + half
	// may be twins.
	half uint32
	// SSNs are a permutation of 100000000..899999999: ssnA·e + ssnB mod
	// ssnMod, ssnA a unit mod ssnMod.
	ssnB uint64
}

const (
	ssnMod = 800_000_000
	ssnA   = 387_420_489 // 3^18, prime to 2 and 5
)

func newIdentities(seed uint64, errs Errors, total int) (*identities, error) {
	if err := errs.validate(); err != nil {
		return nil, err
	}
	id := &identities{seed: seed, errs: errs, names: newNames(), half: uint32(total / 2)}
	sum := 0.0
	for a := range 100 {
		sum += ageWeight(a)
		id.ageCum = append(id.ageCum, sum)
	}
	id.ssnB = rand.New(rand.NewPCG(seed, 0x73736e)).Uint64N(ssnMod)
	return id, nil
}

// Stream tags of the identity and record generators (seeded PRGs:
// inputs, never secrets).
const (
	streamIdentity = 0x6964 << 48
	streamRecord   = 0x7263 << 48
	streamTwin     = 0x7477 << 48
)

// twinShare is the share of people who are a twin: entities j and
// j + half (half = total/2) are twins with this probability, so that
// twins fall into different blocks and are often at different hospitals. US twin births were about 1.9% of
// births in 1980 and 3.3% in 2014 (CDC, National Vital Statistics
// Reports, "Births: final data"); 2.5% is between the two, for a
// population born over a century. Twins share their birth surname and
// birth date, not their given name nor SSN: the classic false link of
// keys on surname and birth date.
const twinShare = 0.025

// sameSexTwins is the share of twin pairs of the same sex: a third of
// twins are identical, and half the others same-sex.
const sameSexTwins = 2.0 / 3

// truth returns entity e's identity.
func (id *identities) truth(e uint32) person {
	if id.people != nil {
		p := id.people[e]
		return person{given: p.Given, surname: p.Surname, maiden: p.Maiden, birth: p.Birth, female: p.Female, ssn: p.SSN}
	}
	rng := rand.New(rand.NewPCG(id.seed, streamIdentity|uint64(e)))
	var twin *person
	if e >= id.half && e-id.half < id.half && rand.New(rand.NewPCG(id.seed, streamTwin|uint64(e-id.half))).Float64() < twinShare {
		t := id.truth(e - id.half) // below half: never the younger twin
		twin = &t
	}
	var p person
	p.female = rng.IntN(2) == 1
	if twin != nil {
		p.female = twin.female == (rng.Float64() < sameSexTwins)
	}
	sex := 0
	if p.female {
		sex = 1
	}
	p.given = id.names.given[sex].name(id.names.given[sex].draw(rng))
	p.surname = id.names.surname.name(id.names.surname.draw(rng))
	u := rng.Float64() * id.ageCum[len(id.ageCum)-1]
	age := 0
	for age < len(id.ageCum)-1 && id.ageCum[age] <= u {
		age++
	}
	// Born age years before refYear-01-01, on any day of that year.
	year := refYear - 1 - age
	days := 365
	if time.Date(year, 12, 31, 0, 0, 0, 0, time.UTC).YearDay() == 366 {
		days = 366
	}
	p.birth = time.Date(year, 1, 1+rng.IntN(days), 0, 0, 0, 0, time.UTC)
	if twin != nil {
		// The twin's birth surname and date; a different given name.
		p.birth = twin.birth
		p.surname = twin.surname
		if twin.maiden != "" {
			p.surname = twin.maiden
		}
		for p.given == twin.given {
			sex := 0
			if p.female {
				sex = 1
			}
			p.given = id.names.given[sex].name(id.names.given[sex].draw(rng))
		}
	}
	if p.female && p.age() >= 18 && rng.Float64() < maidenShare {
		// Married: the birth surname becomes the maiden name.
		p.maiden = p.surname
		for p.surname == p.maiden {
			p.surname = id.names.surname.name(id.names.surname.draw(rng))
		}
	}
	p.ssn = strconv.FormatUint(100_000_000+(ssnA*uint64(e)+id.ssnB)%ssnMod, 10)
	return p
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// record returns party i's record of entity e (whose identity is t), the
// errors it carries and the errors it could have carried (the records
// each rate applies to).
func (id *identities) record(i int, e uint32, t person) (r person, applied, eligible noise) {
	rng := rand.New(rand.NewPCG(id.seed, streamRecord|uint64(i)<<32|uint64(e)))
	r = t
	r.maiden = ""
	// One draw per kind, whether or not it applies, so that one rate does
	// not shift the draws of another.
	hit := func(rate float64, kind noise, ok bool) bool {
		u := rng.Float64()
		if !ok {
			return false
		}
		eligible |= kind
		if u < rate {
			applied |= kind
			return true
		}
		return false
	}
	// Given name: nickname, accent, typo.
	if nn := nicknames[t.given]; hit(id.errs.Nickname, noiseNickname, len(nn) > 0) {
		r.given = nn[rng.IntN(len(nn))]
	}
	if hit(id.errs.Accent, noiseGivenAccent, !isASCII(r.given)) {
		r.given = dropAccents(rng, r.given)
	}
	if hit(id.errs.Typo, noiseGivenTypo, true) {
		r.given = typo(rng, r.given)
	}
	// Surname: maiden name, accent, typo.
	if hit(id.errs.MaidenName, noiseMaiden, t.maiden != "") {
		r.surname = t.maiden
	}
	if hit(id.errs.Accent, noiseSurnameAccent, !isASCII(r.surname)) {
		r.surname = dropAccents(rng, r.surname)
	}
	if hit(id.errs.Typo, noiseSurnameTypo, true) {
		r.surname = typo(rng, r.surname)
	}
	// Birth date: swap, then off by one.
	if d, m := r.birth.Day(), int(r.birth.Month()); hit(id.errs.DayMonthSwap, noiseDayMonthSwap, d <= 12 && d != m) {
		r.birth = time.Date(r.birth.Year(), time.Month(d), m, 0, 0, 0, 0, time.UTC)
	}
	if hit(id.errs.DateOffByOne, noiseOffByOne, true) {
		r.birth = r.birth.AddDate(0, 0, 2*rng.IntN(2)-1)
	}
	// SSN: missing, else maybe transposed.
	pairs := adjacentPairs([]rune(r.ssn), 0) // digits: rune and byte positions agree
	if hit(id.errs.MissingSSN, noiseMissingSSN, true) {
		r.ssn = ""
	} else if hit(id.errs.SSNTransposition, noiseSSNTransposition, len(pairs) > 0) {
		b := []byte(r.ssn)
		k := pairs[rng.IntN(len(pairs))]
		b[k], b[k+1] = b[k+1], b[k]
		r.ssn = string(b)
	}
	return r, applied, eligible
}

// adjacentPairs returns the positions k ≥ from where rs[k] ≠ rs[k+1].
func adjacentPairs(rs []rune, from int) []int {
	var pos []int
	for k := from; k+1 < len(rs); k++ {
		if rs[k] != rs[k+1] {
			pos = append(pos, k)
		}
	}
	return pos
}

var (
	// germanTranslit writes umlauts the German way.
	germanTranslit = strings.NewReplacer("ä", "ae", "ö", "oe", "ü", "ue", "Ä", "Ae", "Ö", "Oe", "Ü", "Ue")
	// qwerty gives each letter's neighbours on a QWERTY keyboard.
	qwerty = map[rune]string{
		'q': "wa", 'w': "qes", 'e': "wrd", 'r': "etf", 't': "ryg", 'y': "tuh", 'u': "yij", 'i': "uok", 'o': "ipl", 'p': "ol",
		'a': "qsz", 's': "awdz", 'd': "sefx", 'f': "drgc", 'g': "fthv", 'h': "gyjb", 'j': "hukn", 'k': "jilm", 'l': "kop",
		'z': "asx", 'x': "zsdc", 'c': "xdfv", 'v': "cfgb", 'b': "vghn", 'n': "bhjm", 'm': "njk",
	}
)

// dropAccents writes s in ASCII: umlauts transliterated half the time,
// other accents dropped.
func dropAccents(rng *rand.Rand, s string) string {
	if strings.ContainsAny(s, "äöüÄÖÜ") && rng.IntN(2) == 0 {
		s = germanTranslit.Replace(s)
	}
	return stripAccents(s)
}

// neighbour returns a key next to r on a QWERTY keyboard (r folded to
// ASCII lower case), never r itself.
func neighbour(rng *rand.Rand, r rune) rune {
	k := r
	if s := strings.ToLower(stripAccents(string(r))); len(s) == 1 {
		k = rune(s[0])
	}
	if nb, ok := qwerty[k]; ok {
		return rune(nb[rng.IntN(len(nb))])
	}
	for {
		if c := rune('a' + rng.IntN(26)); c != r {
			return c
		}
	}
}

// typo makes one keyboard error in s, never in its first letter; the
// result always differs from s.
func typo(rng *rand.Rand, s string) string {
	rs := []rune(s)
	op := rng.IntN(4)
	if len(rs) < 2 {
		op = 0 // a one-letter name can only gain a letter
	}
	if op == 1 && len(rs) < 3 {
		op = 2 // keep two letters at least
	}
	if op == 3 && len(adjacentPairs(rs, 1)) == 0 {
		op = 2 // "Lee": nothing to transpose
	}
	switch op {
	case 0: // insert a neighbour of the preceding letter
		p := 1 + rng.IntN(len(rs))
		rs = append(rs[:p], append([]rune{neighbour(rng, rs[p-1])}, rs[p:]...)...)
	case 1: // delete
		p := 1 + rng.IntN(len(rs)-1)
		rs = append(rs[:p], rs[p+1:]...)
	case 2: // substitute a neighbouring key
		p := 1 + rng.IntN(len(rs)-1)
		rs[p] = neighbour(rng, rs[p])
	case 3: // transpose two adjacent different letters
		pos := adjacentPairs(rs, 1)
		p := pos[rng.IntN(len(pos))]
		rs[p], rs[p+1] = rs[p+1], rs[p]
	}
	return string(rs)
}

// ssnFormat writes a nine-digit SSN in a party's format.
func ssnFormat(style int, ssn string) string {
	if ssn == "" {
		return ""
	}
	switch style {
	case 1:
		return ssn
	case 2:
		return ssn[:3] + " " + ssn[3:5] + " " + ssn[5:]
	default:
		return ssn[:3] + "-" + ssn[3:5] + "-" + ssn[5:]
	}
}
