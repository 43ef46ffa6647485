package linkage

// KeySet is a named list of match keys, as a spec's match.keys.
type KeySet struct {
	Name string
	Keys [][]string
}

// CohortKeySets are the key lists the benchmark compares on realistic
// cohorts: single keys, and ordered lists. "recommended" is the list
// README.md recommends.
var CohortKeySets = []KeySet{
	{"ssn", [][]string{{"ssn"}}},
	{"name+dob", [][]string{{"given_name", "family_name", "birth_date"}}},
	{"name+dob+sex", [][]string{{"given_name", "family_name", "birth_date", "sex"}}},
	{"ssn/name+dob", [][]string{{"ssn"}, {"given_name", "family_name", "birth_date"}}},
	{"recommended", Recommended},
	// The recommended list with the given name's initial in the third
	// key instead of its Soundex code: a little more recall, less
	// precision when few patients are shared.
	{"initial", [][]string{
		{"ssn"},
		{"family_name", "given_name", "birth_date"},
		{"family_name|soundex", "given_name|initial", "birth_date|day_month_unordered", "sex"},
		{"given_name|soundex", "birth_date", "ssn|last4"},
		{"family_name|soundex", "birth_date", "ssn|last4"},
	}},
}

// Recommended is the ordered key list README.md recommends for
// hospital exports with SSN, names, birth date and sex.
var Recommended = [][]string{
	{"ssn"},
	{"family_name", "given_name", "birth_date"},
	{"family_name|soundex", "given_name|soundex", "birth_date|day_month_unordered", "sex"},
	{"given_name|soundex", "birth_date", "ssn|last4"},
	{"family_name|soundex", "birth_date", "ssn|last4"},
}

// AnonlinkKeySets are the key lists compared on the anonlink five-party
// set, which has no SSN (fields: given_name, family_name, birth_date,
// sex, city, phone).
var AnonlinkKeySets = []KeySet{
	{"name+dob+sex", [][]string{{"given_name", "family_name", "birth_date", "sex"}}},
	{"name+dob", [][]string{{"given_name", "family_name", "birth_date"}}},
	{"ordered", [][]string{
		{"given_name", "family_name", "birth_date"},
		{"family_name|soundex", "given_name|initial", "birth_date|day_month_unordered"},
		{"given_name|soundex", "family_name|initial", "birth_date"},
		{"given_name", "family_name", "phone"},
		{"family_name|soundex", "given_name|soundex", "birth_date|year"},
	}},
}
