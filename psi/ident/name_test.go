package ident_test

import (
	"crypto/rand"
	"encoding/binary"
	"strings"
	"testing"
	"testing/cryptotest"
	"unicode/utf8"

	"github.com/mpsi-dev/mpsi/psi/ident"
	"github.com/stretchr/testify/require"
)

func TestNormalizeName(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr error
	}{
		// Latin with accents; dashes separate words.
		{"accents and hyphen", "José Álvarez-Núñez", "jose alvarez nunez", nil},
		{"hyphen equals space", "Álvarez Núñez", "alvarez nunez", nil},
		{"umlaut padded", "  MÜLLER  ", "muller", nil},
		{"apostrophe dropped", "O'Brien", "obrien", nil},
		{"typographic apostrophe", "O’Brien", "obrien", nil},
		{"modifier apostrophe", "Oʼbrien", "obrien", nil},
		{"diaeresis", "Zoë", "zoe", nil},
		{"ring", "Ångström", "angstrom", nil},
		{"angstrom sign", "\u212Bngström", "angstrom", nil},
		{"sharp s folds", "Straße", "strasse", nil},
		{"capital sharp s", "STRAẞE", "strasse", nil},
		{"decomposed input", "Jose\u0301", "jose", nil},
		{"caron", "Dvořák", "dvorak", nil},
		{"dotted capital I", "İlkay", "ilkay", nil},
		{"stroke letters are transliterated", "Łukasz", "lukasz", nil},
		{"o with stroke", "Søren Ørsted", "soren orsted", nil},
		{"ligature ae", "Ævar Œdipe", "aevar oedipe", nil},
		{"thorn and eth", "Þórður Guðmundsson", "thordur gudmundsson", nil},
		{"ligature", "ﬁnn", "finn", nil},
		{"digraph", "ǅemal", "dzemal", nil},
		{"synthea suffix kept", "Fredric73", "fredric73", nil},
		{"synthea accented", "José Eduardo181", "jose eduardo181", nil},
		// Greek, Cyrillic, Arabic.
		{"greek tonos", "Γιώργος", "γιωργοσ", nil},
		{"cyrillic yo", "Ёлкин", "елкин", nil},
		{"cyrillic short i", "Андрей", "андреи", nil},
		{"arabic hamza", "أحمد", "احمد", nil},
		// CJK: kept, full width to half width, no spaces between.
		{"chinese spaced", "张 伟", "张伟", nil},
		{"chinese unspaced", "张伟", "张伟", nil},
		{"chinese ideographic space", "张\u3000伟", "张伟", nil},
		{"full-width latin", "ＺＨＡＮＧ", "zhang", nil},
		{"full-width latin words", "ＺＨＡＮＧ　Ｗｅｉ", "zhang wei", nil},
		{"latin then han keeps space", "Zhang 伟", "zhang 伟", nil},
		{"katakana voicing kept", "ガ", "ガ", nil},
		{"half-width katakana", "ｶﾞﾝﾀﾞﾑ", "ガンダム", nil},
		{"katakana middle dot", "ジョン・スミス", "ジョンスミス", nil},
		{"hangul", "김 민준", "김민준", nil},
		{"devanagari vowel signs kept", "महेश", "महेश", nil},
		// Whitespace and punctuation.
		{"collapse whitespace", " \tMary \n\r Ann\v ", "mary ann", nil},
		{"nbsp and em space", "\u00a0Mary\u2003Ann\u00a0", "mary ann", nil},
		{"punctuation dropped", "Smith, Jr.", "smith jr", nil},
		{"dots dropped", "J.R.R. Tolkien", "jrr tolkien", nil},
		{"symbols dropped", "Ann © ® ™ *", "ann tm", nil}, // ™ is NFKC "TM", a word
		{"dash between spaces", "Jean - Pierre", "jean pierre", nil},
		{"en dash", "Jean–Pierre", "jean pierre", nil},
		{"controls dropped", "Ma\x00ry\x1f", "mary", nil},
		{"zero width dropped", "Ma\u200bry\ufeff", "mary", nil},
		{"already normal", "mary ann", "mary ann", nil},
		// Errors.
		{"empty", "", "", ident.ErrEmpty},
		{"blank", " \t ", "", ident.ErrEmpty},
		{"only punctuation", "-'.,", "", ident.ErrEmpty},
		{"only non-ascii punctuation", "—・", "", ident.ErrEmpty},
		{"orphan mark", "\u0301", "", ident.ErrEmpty},
		{"invalid utf-8", "Jos\xe9", "", ident.ErrInvalidUTF8},
		{"invalid utf-8 ascii start", "abc\xff", "", ident.ErrInvalidUTF8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ident.NormalizeName(tc.in)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				if got != "" {
					t.Errorf("NormalizeName(%q) = %q with error, want \"\"", tc.in, got)
				}
				return
			}
			require.NoError(t, err)
			if got != tc.want {
				t.Errorf("NormalizeName(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if again, err := ident.NormalizeName(got); err != nil || again != got {
				t.Errorf("NormalizeName(%q) = %q, %v; not idempotent", got, again, err)
			}
		})
	}
}

func TestNormalizeID(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr error
	}{
		{"ssn dashes", "999-12-3456", "999123456", nil},
		{"ssn plain", "999123456", "999123456", nil},
		{"ssn spaces", " 999 12 3456 ", "999123456", nil},
		{"dots and slashes", "12.345/678", "12345678", nil},
		{"letters folded", "S99984236", "s99984236", nil},
		{"passport", "X19277260X", "x19277260x", nil},
		{"leading zeros kept", "007", "007", nil},
		{"full width", "９９９－１２－３４５６", "999123456", nil},
		{"unicode dash", "999‐12‐3456", "999123456", nil},
		{"symbols dropped", "MRN#42+", "mrn42", nil},
		{"empty", "", "", ident.ErrEmpty},
		{"only punctuation", " - / . ", "", ident.ErrEmpty},
		{"invalid utf-8", "12\xff", "", ident.ErrInvalidUTF8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ident.NormalizeID(tc.in)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			if got != tc.want {
				t.Errorf("NormalizeID(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	a, _ := ident.NormalizeID("999-12-3456")
	b, _ := ident.NormalizeID("999123456")
	if a != b {
		t.Errorf("NormalizeID(999-12-3456) = %q != NormalizeID(999123456) = %q", a, b)
	}
}

// randIntn returns a value in [0, n) from crypto/rand, which the tests
// make deterministic with cryptotest.SetGlobalRandom.
func randIntn(n int) int {
	var b [8]byte
	rand.Read(b[:])
	return int(binary.LittleEndian.Uint64(b[:]) % uint64(n))
}

// randASCII returns a random ASCII string biased towards name-like text.
func randASCII(maxLen int) string {
	const nameish = "abcXYZ09 -'.,\t"
	b := make([]byte, randIntn(maxLen+1))
	for i := range b {
		if randIntn(2) == 0 {
			b[i] = nameish[randIntn(len(nameish))]
		} else {
			b[i] = byte(randIntn(utf8.RuneSelf))
		}
	}
	return string(b)
}

// TestASCIIFastPath proves that the ASCII fast paths give the same output
// as the general Unicode paths: on every single byte and pair of bytes,
// and on random strings.
func TestASCIIFastPath(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 1)
	check := func(s string) {
		t.Helper()
		fast, ok := ident.ASCIIName(s)
		if !ok {
			t.Fatalf("ASCIIName(%q) refused ASCII input", s)
		}
		slow, err := ident.GeneralName(s)
		if fast != slow || (fast == "") != (err != nil) {
			t.Fatalf("ASCIIName(%q) = %q, GeneralName = %q, %v", s, fast, slow, err)
		}
		fast, ok = ident.ASCIIID(s)
		if !ok {
			t.Fatalf("ASCIIID(%q) refused ASCII input", s)
		}
		slow, err = ident.GeneralID(s)
		if fast != slow || (fast == "") != (err != nil) {
			t.Fatalf("ASCIIID(%q) = %q, GeneralID = %q, %v", s, fast, slow, err)
		}
	}
	for c := range utf8.RuneSelf {
		for d := range utf8.RuneSelf {
			check(string([]byte{byte(c), 'a', byte(d)}))
		}
		check(string([]byte{byte(c)}))
	}
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for range n {
		check(randASCII(24))
	}
	if _, ok := ident.ASCIIName("Zoë"); ok {
		t.Errorf("ASCIIName accepted non-ASCII input")
	}
}

func TestNormalizeNameNoAllocWhenNormal(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ident.NormalizeName("mary ann smith"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("NormalizeName(normal ASCII) allocates %v times, want 0", allocs)
	}
}

// TestLatinFastPath proves that the fast path for ASCII and precomposed
// Latin-1 letters gives generalName's output: it accepts every rune of
// U+00C0..U+00FF and agrees on each of them alone and between letters,
// spaces and dashes; it refuses the rest of U+0080..U+00BF and anything
// else non-ASCII; and on random strings mixing ASCII, Latin-1 and other
// text (combining marks, other scripts, invalid bytes) NormalizeName and
// AppendName equal generalName whether or not the fast path applies.
func TestLatinFastPath(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 2)
	check := func(s string, mustFast bool) {
		t.Helper()
		slow, slowErr := ident.GeneralName(s)
		fast, ok := ident.LatinName([]byte("x"), s)
		if ok {
			if string(fast) != "x"+slow || (len(fast) == 1) != (slowErr != nil) {
				t.Fatalf("LatinName(%q) = %q, GeneralName = %q, %v", s, fast[1:], slow, slowErr)
			}
		} else if mustFast {
			t.Fatalf("LatinName(%q) refused", s)
		} else if string(fast) != "x" {
			t.Fatalf("LatinName(%q) refused but appended %q", s, fast)
		}
		got, err := ident.NormalizeName(s)
		if got != slow || (err == nil) != (slowErr == nil) {
			t.Fatalf("NormalizeName(%q) = %q, %v, GeneralName = %q, %v", s, got, err, slow, slowErr)
		}
		app, err := ident.AppendName([]byte("x"), s)
		if string(app) != "x"+slow || (err == nil) != (slowErr == nil) {
			t.Fatalf("AppendName(%q) = %q, %v, GeneralName = %q, %v", s, app, err, slow, slowErr)
		}
	}
	for r := rune(0x80); r <= 0xFF; r++ {
		latin := r >= 0xC0
		c := string(r)
		for _, s := range []string{c, "a" + c + "b", "A" + c, c + "Z", " " + c + " ", "-" + c + "-x", "x " + c, c + c, "9" + c + "\t"} {
			check(s, latin)
		}
		if !latin {
			if _, ok := ident.LatinName(nil, c); ok {
				t.Errorf("LatinName accepted U+%04X", r)
			}
		}
	}
	for _, s := range []string{"Müller", "Núñez", "Søren", "Öztürk", "STRAßE", "Þór", "Ævar", "× ÷", "Zoë\u0301", "Łukasz", "Jos\xc3", "Jos\xc3(", "\xc3\xc3"} {
		check(s, false)
	}
	alphabet := []string{"a", "Z", "0", " ", "-", "'", ".", "\t", "é", "Ö", "ß", "ø", "Æ", "þ", "×", "ÿ",
		"\u00a0", "µ", "ª", "¹", "¼", "´", "\u0301", "\u0308", "ł", "ı", "İ", "ǅ", "张", "ｶ", "\u3099", "\xc3", "\xff"}
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for range n {
		var b strings.Builder
		for range randIntn(12) {
			if randIntn(4) == 0 {
				b.WriteString(alphabet[randIntn(len(alphabet))])
			} else {
				b.WriteString(alphabet[randIntn(16)]) // mostly the fast path's alphabet
			}
		}
		check(b.String(), false)
	}
}

// AppendName, AppendID and Layout.Append do not allocate for the inputs
// the loader sees most (dst with room).
func TestAppendNoAlloc(t *testing.T) {
	l, err := ident.ParseLayout("MM/DD/YYYY")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		for _, s := range []string{"  JOSÉ ÁLVAREZ-NÚÑEZ ", "Müller", "O'Brien"} {
			if _, err = ident.AppendName(buf[:0], s); err != nil {
				t.Fatal(err)
			}
		}
		if _, err = ident.AppendID(buf[:0], "999-76-6866"); err != nil {
			t.Fatal(err)
		}
		if _, err = l.Append(buf[:0], "05/25/1989"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Append functions allocate %v times, want 0", allocs)
	}
}
