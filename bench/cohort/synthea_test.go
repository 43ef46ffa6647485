package cohort

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const syntheaHeader = "Id,BIRTHDATE,DEATHDATE,SSN,DRIVERS,PASSPORT,PREFIX,FIRST,LAST,SUFFIX,MAIDEN,MARITAL,GENDER\n"

func TestReadSyntheaPatients(t *testing.T) {
	in := syntheaHeader +
		"1d6,1989-05-25,,999-76-6866,S1,X1,Mr.,José Eduardo181,Gómez206,,,M,M\n" +
		"2e7,1950-02-28,2001-01-01,999-12-3456,,,Mrs.,Ann73,Lee8,,Smith90,M,F\n"
	ps, err := ReadSyntheaPatients(strings.NewReader(in))
	require.NoError(t, err)
	require.Equal(t, []Person{
		{Given: "José Eduardo", Surname: "Gómez", Birth: time.Date(1989, 5, 25, 0, 0, 0, 0, time.UTC), SSN: "999766866"},
		{Given: "Ann", Surname: "Lee", Maiden: "Smith", Birth: time.Date(1950, 2, 28, 0, 0, 0, 0, time.UTC), Female: true, SSN: "999123456"},
	}, ps)
	for _, c := range []struct{ row, want string }{
		{"x,1989-13-25,,999-76-6866,,,,Secret1,Secret2,,,M,M", "line 2: bad BIRTHDATE"},
		{"x,1989-12-25,,999-76-686,,,,Secret1,Secret2,,,M,M", "line 2: bad SSN"},
		{"x,1989-12-25,,999-76-6866,,,,Secret1,Secret2,,,M,X", "line 2: bad GENDER"},
		{"x,1989-12-25,,999-76-6866,,,,123,Secret2,,,M,M", "line 2: bad FIRST"},
		{"x,1989-12-25,,999-76-6866,,,,Secret1,Secret2,,,M", "line 2"},
	} {
		_, err := ReadSyntheaPatients(strings.NewReader(syntheaHeader + c.row + "\n"))
		require.ErrorContains(t, err, c.want)
		require.NotContains(t, err.Error(), "Secret")
	}
	_, err = ReadSyntheaPatients(strings.NewReader("Id,FIRST\n"))
	require.ErrorContains(t, err, "no column LAST")
}

func FuzzReadSyntheaPatients(f *testing.F) {
	f.Add(syntheaHeader + "1d6,1989-05-25,,999-76-6866,S1,X1,Mr.,José Eduardo181,Gómez206,,,M,M\n")
	f.Add(syntheaHeader + "x,1989-13-25,,999-76-6866,,,,A,B,,,M,M\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		ps, err := ReadSyntheaPatients(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, p := range ps {
			if p.Given == "" || p.Surname == "" || len(p.SSN) != 9 || p.Maiden == p.Surname {
				t.Fatalf("accepted %+v", p)
			}
		}
	})
}

// A cohort of given people takes them in order as the truth.
func TestRealisticPeople(t *testing.T) {
	people := make([]Person, 40)
	for i := range people {
		people[i] = Person{Given: "Given" + string(rune('a'+i%26)), Surname: "Surname", Birth: time.Date(1950+i, 3, 4, 0, 0, 0, 0, time.UTC), SSN: "123456789"}
	}
	cfg := realistic(Config{Seed: 1, Parties: 2, Records: 20, SharedAll: 0.5, People: people})
	g, err := newGenerator(cfg)
	require.NoError(t, err)
	for e := range uint32(30) {
		p := g.id.truth(e)
		require.Equal(t, people[e].Given, p.given)
		require.True(t, people[e].Birth.Equal(p.birth))
	}
	cfg.Records = 40 // 20 shared + 2·20 own = 60 patients > 40 people
	_, err = Generate(cfg)
	require.ErrorContains(t, err, "People holds 40")
	cfg.Realistic = nil
	_, err = Generate(cfg)
	require.ErrorContains(t, err, "People needs Realistic")
}
