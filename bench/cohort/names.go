package cohort

import (
	"math/rand/v2"
	"slices"
	"strings"
)

// The realistic identities of [Config.Realistic] draw names from these
// tables. Each table has a head of real names with their frequencies and a
// generated tail continuing it, so that common names are as common as in a
// real population (which is what makes name-based keys collide between
// different people) and rare names are rare.

// weighted is a name with its weight.
type weighted struct {
	name string
	w    float64
}

// surnameHead is the head of the surname distribution: the 50 most frequent
// surnames of the US Census 2010 ("Frequently Occurring Surnames from the
// 2010 Census", U.S. Census Bureau, 2016), as occurrences per 100,000
// people, rounded. They were transcribed by hand, not downloaded: treat
// each as approximate (within a few percent); what matters here is the
// shape, a few very common names and a long tail. The Spanish surnames carry their
// accents as written in Spanish orthography (the Census table is ASCII):
// US records write them either way, which is what the accent noise
// exercises. The last five are German, French and Spanish names with umlauts and
// accents, with illustrative weights (not from the Census table), so that
// transliteration ("Müller" → "Mueller") is exercised.
var surnameHead = []weighted{
	{"Smith", 828}, {"Johnson", 655}, {"Williams", 551}, {"Brown", 487}, {"Jones", 483},
	{"García", 395}, {"Miller", 394}, {"Davis", 378}, {"Rodríguez", 371}, {"Martínez", 359},
	{"Hernández", 354}, {"López", 296}, {"González", 285}, {"Wilson", 272}, {"Anderson", 266},
	{"Thomas", 256}, {"Taylor", 255}, {"Moore", 246}, {"Jackson", 240}, {"Martin", 238},
	{"Lee", 237}, {"Pérez", 228}, {"Thompson", 225}, {"White", 223}, {"Harris", 213},
	{"Sánchez", 210}, {"Clark", 187}, {"Ramírez", 185}, {"Lewis", 182}, {"Robinson", 182},
	{"Walker", 180}, {"Young", 168}, {"Allen", 166}, {"King", 165}, {"Wright", 164},
	{"Scott", 155}, {"Torres", 153}, {"Nguyen", 151}, {"Hill", 150}, {"Flores", 149},
	{"Green", 148}, {"Adams", 144}, {"Nelson", 143}, {"Baker", 141}, {"Hall", 137},
	{"Rivera", 135}, {"Campbell", 131}, {"Mitchell", 129}, {"Carter", 127}, {"Roberts", 127},
	{"Müller", 40}, {"Schäfer", 25}, {"Köhler", 20}, {"Lefèvre", 15}, {"Núñez", 60},
}

// givenHead is the head of the given-name distribution per sex: the 50
// most frequent names of the US Social Security Administration's "Top
// names over the last 100 years" (births 1923–2022), in thousands of
// births, rounded and transcribed by hand like surnameHead (approximate;
// José's count is illustrative). "María" and "José" carry their Spanish accents (SSA
// records are ASCII), as in surnameHead.
var givenHead = [2][]weighted{
	{ // male
		{"James", 4764}, {"Robert", 4525}, {"John", 4460}, {"Michael", 4400}, {"David", 3650},
		{"William", 3614}, {"Richard", 2563}, {"Joseph", 2618}, {"Thomas", 2330}, {"Charles", 2264},
		{"Christopher", 2040}, {"Daniel", 1935}, {"Matthew", 1630}, {"Anthony", 1450}, {"Mark", 1357},
		{"Donald", 1350}, {"Steven", 1290}, {"Andrew", 1280}, {"Paul", 1280}, {"Joshua", 1230},
		{"Kenneth", 1230}, {"Kevin", 1180}, {"Brian", 1170}, {"George", 1160}, {"Timothy", 1080},
		{"Ronald", 1070}, {"Jason", 1030}, {"Edward", 1030}, {"Jeffrey", 980}, {"Ryan", 960},
		{"Jacob", 950}, {"Gary", 900}, {"Nicholas", 930}, {"Eric", 880}, {"Jonathan", 830},
		{"Stephen", 840}, {"Larry", 800}, {"Justin", 790}, {"Scott", 780}, {"Brandon", 760},
		{"Benjamin", 750}, {"Samuel", 720}, {"Gregory", 710}, {"Alexander", 700}, {"Patrick", 680},
		{"Frank", 690}, {"Raymond", 660}, {"Jack", 650}, {"Dennis", 620}, {"José", 600},
	},
	{ // female
		{"Mary", 3200}, {"Patricia", 1560}, {"Jennifer", 1470}, {"Linda", 1450}, {"Elizabeth", 1430},
		{"Barbara", 1400}, {"Susan", 1110}, {"Jessica", 1050}, {"Sarah", 990}, {"Karen", 990},
		{"Lisa", 970}, {"Nancy", 970}, {"Betty", 910}, {"Sandra", 880}, {"Margaret", 880},
		{"Ashley", 850}, {"Kimberly", 840}, {"Emily", 840}, {"Donna", 830}, {"Michelle", 810},
		{"Carol", 810}, {"Amanda", 770}, {"Melissa", 750}, {"Deborah", 740}, {"Stephanie", 740},
		{"Dorothy", 720}, {"Rebecca", 710}, {"Sharon", 710}, {"Laura", 700}, {"Cynthia", 700},
		{"Amy", 680}, {"Kathleen", 680}, {"Angela", 660}, {"Shirley", 660}, {"Brenda", 610},
		{"Emma", 610}, {"Anna", 610}, {"Pamela", 600}, {"Nicole", 600}, {"Samantha", 590},
		{"Katherine", 590}, {"Christine", 580}, {"Helen", 580}, {"Debra", 580}, {"Rachel", 570},
		{"Carolyn", 560}, {"Janet", 550}, {"María", 550}, {"Catherine", 550}, {"Heather", 550},
	},
}

// Distribution totals the heads are shares of: surnames per 100,000
// people; given names per thousands of births of one sex over the SSA's
// 100 years (about 180 million births per sex, from the SSA's totals).
const (
	surnameTotal = 100_000
	givenTotal   = 180_000
)

// nicknames maps a formal given name to the short forms records carry
// instead (common English hypocorisms).
var nicknames = map[string][]string{
	"William": {"Bill", "Will", "Billy"}, "Robert": {"Bob", "Rob", "Bobby"}, "Richard": {"Rick", "Dick", "Rich"},
	"James": {"Jim", "Jimmy", "Jamie"}, "John": {"Jack", "Johnny"}, "Michael": {"Mike", "Mikey"},
	"Joseph": {"Joe", "Joey"}, "Thomas": {"Tom", "Tommy"}, "Charles": {"Charlie", "Chuck"},
	"Christopher": {"Chris"}, "Daniel": {"Dan", "Danny"}, "Matthew": {"Matt"}, "Anthony": {"Tony"},
	"Donald": {"Don", "Donnie"}, "Steven": {"Steve"}, "Andrew": {"Andy", "Drew"}, "Kenneth": {"Ken", "Kenny"},
	"Timothy": {"Tim"}, "Ronald": {"Ron", "Ronnie"}, "Edward": {"Ed", "Eddie", "Ted"}, "Jeffrey": {"Jeff"},
	"Nicholas": {"Nick"}, "Jonathan": {"Jon"}, "Stephen": {"Steve"}, "Gregory": {"Greg"},
	"Benjamin": {"Ben"}, "Samuel": {"Sam"}, "Alexander": {"Alex"}, "Patrick": {"Pat"},
	"Raymond": {"Ray"}, "Lawrence": {"Larry"}, "Joshua": {"Josh"}, "Jacob": {"Jake"},
	"Elizabeth": {"Liz", "Beth", "Betty", "Eliza"}, "Patricia": {"Pat", "Patty", "Trish"},
	"Jennifer": {"Jen", "Jenny"}, "Margaret": {"Peggy", "Maggie", "Meg"}, "Susan": {"Sue", "Susie"},
	"Barbara": {"Barb"}, "Deborah": {"Debbie", "Deb"}, "Debra": {"Debbie"}, "Kimberly": {"Kim"},
	"Katherine": {"Kate", "Kathy", "Katie"}, "Catherine": {"Cathy", "Kate"}, "Kathleen": {"Kathy"},
	"Rebecca": {"Becky"}, "Cynthia": {"Cindy"}, "Pamela": {"Pam"}, "Samantha": {"Sam"},
	"Christine": {"Chris"}, "Dorothy": {"Dot", "Dottie"}, "Stephanie": {"Steph"}, "Nicole": {"Nikki"},
	"Amanda": {"Mandy"}, "Melissa": {"Missy"}, "Sandra": {"Sandy"}, "Jessica": {"Jess"},
	"Carolyn": {"Carol"}, "Ashley": {"Ash"},
}

// The generated tails: tail rank r (0-based) has weight ∝ 1/(offset + r),
// Zipf's law continuing the head, scaled so that the tail holds the share
// the head leaves. The offsets keep the first tail name rarer than the
// last head name.
const (
	surnameTail, surnameOffset = 100_000, 150
	givenTail, givenOffset     = 20_000, 100
)

var (
	syllables = []string{"ba", "ber", "bro", "ca", "cor", "da", "del", "dor", "fa", "fer", "ga", "gor",
		"ha", "har", "ja", "ka", "kel", "ko", "la", "lan", "le", "lin", "lo", "ma", "man", "mar", "mo",
		"na", "nel", "no", "pa", "per", "ra", "ren", "ri", "ro", "sa", "sel", "so", "sten", "ta", "ter",
		"to", "tra", "va", "ven", "vi", "wal", "wen", "za", "bel", "din", "gan", "hol", "mer", "nor",
		"quin", "rus", "sil", "tor", "vin", "wes", "yor", "zel"}
	surnameEnds = []string{"", "son", "ton", "er", "man", "ez", "ski", "berg", "ley", "well"}
	givenEnds   = [2][]string{{"", "o", "an", "el", "us", "en"}, {"a", "ie", "ine", "elle", "ia", "ette"}}
)

// tailName is the generated name of tail rank r: syllables and an ending
// chosen by the digits of r, capitalised. Different ranks may rarely give
// the same name, as different spellings do.
func tailName(r int, ends []string) string {
	var b strings.Builder
	n := len(syllables)
	b.WriteString(syllables[r%n])
	b.WriteString(syllables[r/n%n])
	if q := r / (n * n); q > 0 {
		b.WriteString(syllables[(q-1)%n])
		r = q
	}
	b.WriteString(ends[r%len(ends)])
	s := b.String()
	return strings.ToUpper(s[:1]) + s[1:]
}

// nameTable draws names by weight: a cumulative table over head then tail.
type nameTable struct {
	head []weighted
	ends []string
	cum  []float64
}

func newNameTable(head []weighted, total float64, tail, offset int, ends []string) *nameTable {
	t := &nameTable{head: head, ends: ends, cum: make([]float64, 0, len(head)+tail)}
	sum := 0.0
	for _, h := range head {
		sum += h.w
		t.cum = append(t.cum, sum)
	}
	z := 0.0
	for r := range tail {
		z += 1 / float64(offset+r)
	}
	scale := (total - sum) / z
	for r := range tail {
		sum += scale / float64(offset+r)
		t.cum = append(t.cum, sum)
	}
	return t
}

// draw returns a name index.
func (t *nameTable) draw(rng *rand.Rand) int {
	u := rng.Float64() * t.cum[len(t.cum)-1]
	i, _ := slices.BinarySearch(t.cum, u)
	return min(i, len(t.cum)-1)
}

func (t *nameTable) name(i int) string {
	if i < len(t.head) {
		return t.head[i].name
	}
	return tailName(i-len(t.head), t.ends)
}

// nameTables holds the name tables of one generator.
type nameTables struct {
	surname *nameTable
	given   [2]*nameTable
}

func newNames() *nameTables {
	return &nameTables{
		surname: newNameTable(surnameHead, surnameTotal, surnameTail, surnameOffset, surnameEnds),
		given: [2]*nameTable{
			newNameTable(givenHead[0], givenTotal, givenTail, givenOffset, givenEnds[0]),
			newNameTable(givenHead[1], givenTotal, givenTail, givenOffset, givenEnds[1]),
		},
	}
}
