package linkage

import (
	"strings"
	"testing"
)

// ReadCSV never panics, and a table it returns has one key per record for
// every key; its errors never quote a value of the input (the fuzzer's
// values carry a marker that must not appear in an error).
func FuzzReadCSV(f *testing.F) {
	f.Add("MRN,LAST,DOB,SSN\nr1,Smith,01/02/1990,999-12-3456\nr2,Smyth,01/02/1990,\n")
	f.Add("MRN,LAST,DOB,SSN\nr1,\"Sm\"ith,01/02/1990,1\n")
	f.Add("MRN,LAST,DOB,SSN\nr1,Zoë,13/45/1990\n")
	f.Add("MRN,LAST,DOB,SSN\nSecret,Secret,Secret,Secret,Secret\n\"Secret")
	f.Add("LAST,DOB\n")
	f.Add("")
	keys, err := ParseKeys([][]string{{"ssn"}, {"family_name|soundex", "birth_date"}, {"ssn|last4", "family_name|initial"}})
	if err != nil {
		f.Fatal(err)
	}
	cols := map[string]Column{
		"ssn":         {Name: "SSN", Type: "id"},
		"family_name": {Name: "LAST", Type: "name"},
		"birth_date":  {Name: "DOB", Type: "date", Layout: mustLayout("MM/DD/YYYY")},
	}
	f.Fuzz(func(t *testing.T, in string) {
		tb, err := ReadCSV(strings.NewReader(in), "x.csv", "MRN", cols, keys)
		if err != nil {
			header, _, _ := strings.Cut(in, "\n")
			if strings.Contains(err.Error(), "Secret") && !strings.Contains(header, "Secret") {
				t.Fatalf("error quotes a value: %v", err)
			}
			return
		}
		if tb.Keys() != len(keys) {
			t.Fatalf("%d keys, want %d", tb.Keys(), len(keys))
		}
		for k := range tb.Keys() {
			for i := range tb.Len() {
				_ = tb.KeyAt(k, i)
			}
		}
	})
}
