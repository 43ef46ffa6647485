package ident

import (
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// UnicodeVersion is the Unicode version of the normalisation tables this
// build uses (golang.org/x/text/unicode/norm). Normalised values, and so
// keys, can differ between Unicode versions for newly assigned characters:
// all parties of a session should run builds with the same version.
const UnicodeVersion = norm.Version

// foldCaser performs full Unicode case folding ("ß" → "ss").
// cases.Fold documents the returned Caser as stateless and safe for
// concurrent use, so this is an immutable table, not shared mutable state.
var foldCaser = cases.Fold()

// NormalizeName returns the normal form of a personal name, following the
// rules in the package documentation: NFKC, full case folding, accents
// removed from Latin, Greek, Cyrillic, Arabic and Hebrew letters, dashes
// and whitespace turned into single spaces (none between two CJK
// characters), other punctuation, symbols and control characters dropped,
// NFC. It returns [ErrInvalidUTF8] if s is not valid UTF-8 and [ErrEmpty]
// if nothing is left. The result is idempotent: NormalizeName of a result
// returns it unchanged.
//
// Pure-ASCII input takes a fast path with the same output, and ASCII
// input that is already normal is returned without allocating. NormalizeName is safe for
// concurrent use.
func NormalizeName(s string) (string, error) {
	if out, ok := asciiName(s); ok {
		if out == "" {
			return "", ErrEmpty
		}
		return out, nil
	}
	if b, ok := appendLatinName(make([]byte, 0, len(s)), s); ok {
		if len(b) == 0 {
			return "", ErrEmpty
		}
		return string(b), nil
	}
	return generalName(s)
}

// AppendName appends the normal form of the name s ([NormalizeName]) to
// dst and returns the extended slice; on error dst is returned unchanged.
// It does not allocate when dst has room and s is ASCII, or ASCII and
// precomposed Latin-1 letters (U+00C0..U+00FF, as in "Müller" or "Núñez").
// AppendName is safe for concurrent use.
func AppendName(dst []byte, s string) ([]byte, error) {
	if b, ok := appendLatinName(dst, s); ok {
		if len(b) == len(dst) {
			return dst, ErrEmpty
		}
		return b, nil
	}
	v, err := generalName(s)
	if err != nil {
		return dst, err
	}
	return append(dst, v...), nil
}

// latin1Fold is the normal form of each letter of U+00C0..U+00FF (indexed
// by the second byte of its UTF-8 encoding, minus 0x80): case folded,
// accents removed, the stroked letters and ligatures transliterated as
// latinLetterFold does, "ß" folded to "ss". "" marks × and ÷, symbols that
// NormalizeName drops. Every entry is ASCII, so a name of ASCII and these
// letters needs no Unicode tables (tested against generalName on every
// entry and on random strings).
var latin1Fold = [64]string{
	"a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i", // À..Ï
	"d", "n", "o", "o", "o", "o", "o", "", "o", "u", "u", "u", "u", "y", "th", "ss", // Ð..ß
	"a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i", // à..ï
	"d", "n", "o", "o", "o", "o", "o", "", "o", "u", "u", "u", "u", "y", "th", "y", // ð..ÿ
}

// What asciiNameClass holds for an ASCII byte that a name does not keep.
const (
	nameDrop = 0 // punctuation, symbols, controls: dropped
	nameSep  = 1 // White_Space and the ASCII dash: they separate words
)

// asciiNameClass is, for each ASCII byte, what a name keeps of it: the
// letter lowered, the digit, or nameSep or nameDrop.
var asciiNameClass = func() (t [utf8.RuneSelf]byte) {
	for c := range byte(utf8.RuneSelf) {
		switch {
		case 'A' <= c && c <= 'Z':
			t[c] = c + 'a' - 'A'
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			t[c] = c
		case c == ' ', c == '-', '\t' <= c && c <= '\r':
			t[c] = nameSep
		}
	}
	return t
}()

// appendLatinName is the fast path of AppendName: it appends the normal
// form of s to dst if s consists of ASCII and the letters of latin1Fold,
// and reports false (returning dst unchanged in length) for any other
// input, including invalid UTF-8. Its output is identical to
// generalName's (nothing appended standing for ErrEmpty).
func appendLatinName(dst []byte, s string) ([]byte, bool) {
	start := len(dst)
	pending := false // a word separator is due before the next letter
	for i := 0; i < len(s); i++ {
		c := s[i]
		var t string
		switch {
		case c < utf8.RuneSelf:
			switch k := asciiNameClass[c]; k {
			case nameDrop:
			case nameSep:
				pending = len(dst) > start
			default:
				if pending {
					dst = append(dst, ' ')
					pending = false
				}
				dst = append(dst, k)
			}
			continue
		case c == 0xC3 && i+1 < len(s) && s[i+1]&0xC0 == 0x80:
			i++
			if t = latin1Fold[s[i]-0x80]; t == "" {
				continue // × and ÷
			}
		default:
			return dst[:start], false
		}
		if pending {
			dst = append(dst, ' ')
			pending = false
		}
		if t != "" {
			dst = append(dst, t...)
		} else {
			dst = append(dst, c)
		}
	}
	return dst, true
}

// asciiName is the fast path of NormalizeName. It reports false if s is
// not pure ASCII; otherwise its result is identical to generalName's (the
// empty string standing for ErrEmpty).
func asciiName(s string) (string, bool) {
	// First pass: is s pure ASCII, and already in normal form?
	normal := true
	prevSpace := true // a leading space is not normal
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return "", false
		}
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			prevSpace = false
		case c == ' ' && !prevSpace:
			prevSpace = true
		default:
			normal = false
		}
	}
	if normal && !prevSpace {
		return s, true
	}
	buf := make([]byte, 0, len(s))
	pending := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
			fallthrough
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			if pending {
				buf = append(buf, ' ')
				pending = false
			}
			buf = append(buf, c)
		case c == ' ', c == '-', '\t' <= c && c <= '\r':
			// White_Space (U+0009..U+000D, U+0020) and the one ASCII
			// dash (Pd) separate words.
			pending = len(buf) > 0
		default:
			// Other ASCII punctuation, symbols and controls are dropped.
		}
	}
	return string(buf), true
}

// generalName is NormalizeName for any input.
func generalName(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", ErrInvalidUTF8
	}
	t := norm.NFKC.String(s)
	t = foldCaser.String(t)
	// Step 4 works on the NFKD form (NFKD rather than NFD: it also undoes
	// any compatibility character that case folding produced). Rather
	// than normalising the whole string, which allocates a reorder
	// buffer, each rune is replaced by its full decomposition from the
	// tables. Canonical reordering of marks is skipped: consecutive marks
	// share one keep-or-drop decision, and the final NFC reorders the kept
	// ones. Hangul syllables are not decomposed; NFC would recompose them.
	// The result equals the straightforward pipeline (tested against it).
	var w nameWriter
	w.buf = make([]byte, 0, len(t))
	for i := 0; i < len(t); {
		p := norm.NFKD.PropertiesString(t[i:])
		size := p.Size()
		if size == 0 { // cannot happen on valid UTF-8; be safe
			size = 1
		}
		if d := p.Decomposition(); d != nil {
			for len(d) > 0 {
				r, n := utf8.DecodeRune(d)
				w.put(r)
				d = d[n:]
			}
		} else {
			r, _ := utf8.DecodeRuneInString(t[i:])
			w.put(r)
		}
		i += size
	}
	if len(w.buf) == 0 {
		return "", ErrEmpty
	}
	return string(norm.NFC.Bytes(w.buf)), nil
}

// nameWriter applies the rune classification of NormalizeName.
type nameWriter struct {
	buf      []byte
	pending  bool // a word separator is due before the next base
	keepMark bool // combining marks attach to the last base and are kept
	prevCJK  bool // the last base was Han, Hiragana, Katakana or Hangul
}

func (w *nameWriter) put(r rune) {
	r = foldCherokee(r)
	if t := latinLetterFold(r); t != "" {
		for _, x := range t {
			w.put(x)
		}
		return
	}
	switch {
	case unicode.IsSpace(r) || unicode.Is(unicode.Pd, r):
		w.pending = len(w.buf) > 0
	case unicode.IsMark(r):
		// Marks after a separator or with no base are dropped, as are
		// accents on letters of scripts where they are optional.
		if w.keepMark && !w.pending {
			w.buf = utf8.AppendRune(w.buf, r)
		}
	case unicode.IsLetter(r) && !isModifierSymbol(r), unicode.IsNumber(r):
		cjk := isCJK(r)
		if w.pending {
			if !(w.prevCJK && cjk) {
				w.buf = append(w.buf, ' ')
			}
			w.pending = false
		}
		w.buf = utf8.AppendRune(w.buf, r)
		w.prevCJK = cjk
		w.keepMark = unicode.IsLetter(r) && !hasOptionalMarks(r)
	default:
		// Punctuation, symbols, controls, format characters, unassigned
		// code points: dropped. They do not separate words.
	}
}

// foldCherokee completes case folding for Cherokee. Unicode folds
// Cherokee small letters to the capitals (CaseFolding.txt, "AB70; C;
// 13A0"), but x/text cases.Fold maps capitals to small letters and small
// letters to capitals, so folding is not idempotent
// (https://github.com/golang/go/issues/46101). Mapping every Cherokee
// letter to upper case after cases.Fold gives the Unicode result.
func foldCherokee(r rune) rune {
	if r >= 0x13A0 && r <= 0xABBF && unicode.Is(unicode.Cherokee, r) {
		return unicode.ToUpper(r)
	}
	return r
}

// isCJK reports whether r belongs to a script in which personal names are
// commonly written without spaces; a space between two such characters is
// dropped, so that "张 伟" and "张伟" agree.
func isCJK(r rune) bool {
	return r >= 0x1100 && unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul)
}

// hasOptionalMarks reports whether the combining marks written on letter r
// are optional diacritics that records often omit: accents on Latin,
// Greek and Cyrillic letters, harakat and hamza in Arabic script, niqqud in
// Hebrew. Marks on other scripts carry the letter's identity (kana voicing
// marks: ガ is not カ; Indic vowel signs) and are kept.
func hasOptionalMarks(r rune) bool {
	return r < 0x0370 || unicode.In(r, unicode.Latin, unicode.Greek, unicode.Cyrillic, unicode.Arabic, unicode.Hebrew)
}

// isModifierSymbol reports whether r is a modifier letter of the Spacing
// Modifier Letters block (U+02B0..U+02FF), such as the ʻokina or the
// modifier apostrophe in "Oʼbrien". Those act as punctuation in names and
// are dropped; modifier letters of other blocks (the Japanese ー, the Han
// iteration mark 々) are letters and kept.
func isModifierSymbol(r rune) bool {
	return r >= 0x02B0 && r <= 0x02FF
}

// NormalizeID returns the normal form of an identifier (national id, MRN,
// passport or licence number): NFKC, full case folding, then only letters,
// digits and combining marks are kept (whitespace, punctuation such as
// dashes, dots and slashes, symbols and controls are dropped), NFC. Leading
// zeros are significant. It returns [ErrInvalidUTF8] if s is not valid
// UTF-8 and [ErrEmpty] if nothing is left. The result is idempotent.
// NormalizeID is safe for concurrent use.
func NormalizeID(s string) (string, error) {
	if out, ok := asciiID(s); ok {
		if out == "" {
			return "", ErrEmpty
		}
		return out, nil
	}
	return generalID(s)
}

// AppendID appends the normal form of the identifier s ([NormalizeID]) to
// dst and returns the extended slice; on error dst is returned unchanged.
// It does not allocate when dst has room and s is ASCII. AppendID is safe
// for concurrent use.
func AppendID(dst []byte, s string) ([]byte, error) {
	if isASCII(s) {
		n := len(dst)
		for i := 0; i < len(s); i++ {
			switch c := s[i]; {
			case 'A' <= c && c <= 'Z':
				dst = append(dst, c+'a'-'A')
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
				dst = append(dst, c)
			}
		}
		if len(dst) == n {
			return dst, ErrEmpty
		}
		return dst, nil
	}
	v, err := generalID(s)
	if err != nil {
		return dst, err
	}
	return append(dst, v...), nil
}

// generalID is NormalizeID for any input.
func generalID(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", ErrInvalidUTF8
	}
	t := foldCaser.String(norm.NFKC.String(s))
	t = norm.NFKD.String(t)
	buf := make([]byte, 0, len(t))
	for _, r := range t {
		r = foldCherokee(r)
		if unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r) && len(buf) > 0 {
			buf = utf8.AppendRune(buf, r)
		}
	}
	if len(buf) == 0 {
		return "", ErrEmpty
	}
	return string(norm.NFC.Bytes(buf)), nil
}

// asciiID is the fast path of NormalizeID for pure-ASCII input.
func asciiID(s string) (string, bool) {
	normal := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return "", false
		}
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			normal = false
		}
	}
	if normal {
		return s, true
	}
	buf := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z':
			buf = append(buf, c+'a'-'A')
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			buf = append(buf, c)
		}
	}
	return string(buf), true
}

// latinLetterFold transliterates the (case-folded) Latin letters that carry
// a stroke or are ligatures, which have no Unicode decomposition and which
// hospital exports commonly write in ASCII: "ø" → "o", "ł" → "l", "æ" →
// "ae". It returns "" for every other rune.
func latinLetterFold(r rune) string {
	switch r {
	case 'ø', 'ǿ':
		return "o"
	case 'ł', 'ƚ':
		return "l"
	case 'đ', 'ð', 'ɖ':
		return "d"
	case 'ħ':
		return "h"
	case 'ŧ':
		return "t"
	case 'ı':
		return "i"
	case 'ƀ':
		return "b"
	case 'ƶ':
		return "z"
	case 'æ', 'ǽ':
		return "ae"
	case 'œ':
		return "oe"
	case 'þ':
		return "th"
	case 'ĳ':
		return "ij"
	}
	return ""
}
