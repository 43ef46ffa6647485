package ident_test

import (
	"errors"
	"fmt"

	"github.com/mpsi-dev/mpsi/psi/ident"
)

// Example normalises one row of a hospital export whose birth dates are
// written MM/DD/YYYY and builds its key.
func Example() {
	// From the mapping file: birth_date is "MM/DD/YYYY".
	layout, err := ident.ParseLayout("MM/DD/YYYY")
	if err != nil {
		panic(err)
	}
	row := []struct {
		field string
		typ   ident.Type
		value string
	}{
		{"given_name", ident.TypeName, "José Eduardo"},
		{"family_name", ident.TypeName, "Álvarez-Núñez"},
		{"birth_date", ident.TypeDate, "05/25/1989"},
		{"sex", ident.TypeSex, "Male"},
		{"national_id", ident.TypeID, "999-76-6866"},
	}
	var fields []ident.Field
	for _, c := range row {
		v, err := ident.Normalize(c.typ, layout, c.value)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%-11s %q\n", c.field, v)
		fields = append(fields, ident.Field{Name: c.field, Value: v})
	}
	key := ident.AppendKey(nil, fields)
	fmt.Println("key bytes:", len(key))

	back, err := ident.DecodeKey(key)
	fmt.Println("round trip:", err == nil && len(back) == len(fields))

	// A bad date is reported with what was expected.
	_, err = layout.Normalize("02/29/2001")
	fmt.Println(errors.Is(err, ident.ErrBadDate), err)

	// Output:
	// given_name  "jose eduardo"
	// family_name "alvarez nunez"
	// birth_date  "1989-05-25"
	// sex         "M"
	// national_id "999766866"
	// key bytes: 101
	// round trip: true
	// true ident: bad date "02/29/2001": day 29 outside 1..28 for 2001-02
}

func ExampleNormalizeName() {
	for _, s := range []string{"  MÜLLER  ", "O'Brien", "Straße", "张 伟", "ＺＨＡＮＧ"} {
		n, _ := ident.NormalizeName(s)
		fmt.Printf("%q\n", n)
	}
	_, err := ident.NormalizeName(" -- ")
	fmt.Println(err)
	// Output:
	// "muller"
	// "obrien"
	// "strasse"
	// "张伟"
	// "zhang"
	// ident: empty value
}

// A Spanish export codes sex H (hombre) and M (mujer). Read with the
// built-in table, h is refused as ambiguous (and m would be taken for
// male); the hospital's own codes say what the letters mean.
func ExampleNewSexCodes() {
	_, err := ident.NormalizeSex("H")
	fmt.Println(errors.Is(err, ident.ErrAmbiguousSex))

	codes, err := ident.NewSexCodes(map[string]string{"H": "M", "M": "F"})
	if err != nil {
		panic(err)
	}
	for _, v := range []string{"H", "M", "mujer", "Weiblich"} {
		s, _ := codes.Normalize(v)
		fmt.Println(v, "→", s)
	}
	// Output:
	// true
	// H → M
	// M → F
	// mujer → F
	// Weiblich → F
}

// Transforms coarsen normal forms so that noisy identifiers still agree
// in a match key written "field|transform".
func ExampleTransform() {
	kf, _ := ident.ParseKeyField("surname|soundex")
	for _, name := range []string{"Smith", "Smyth", "Schmidt"} {
		v, _ := ident.NormalizeName(name)
		code, _ := kf.Transform.Append(nil, v)
		fmt.Println(name, string(code))
	}
	swapped, _ := ident.TransformDayMonthUnordered.Append(nil, "1984-07-03")
	fmt.Println(string(swapped))
	// Output:
	// Smith s530
	// Smyth s530
	// Schmidt s530
	// 1984-03-07
}
