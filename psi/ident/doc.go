// Package ident normalises the identifying fields of patient records and
// encodes them as the unambiguous key that the PSI protocol tokenises
// (doc/DESIGN.md §2).
//
// Two hospitals find a patient in common only if both turn the patient's
// name, birth date, sex and identifiers into the same bytes, so these
// rules are part of the protocol: every party of a session must apply the
// same rules, from the same version of this package, built with the same
// [UnicodeVersion]. Changing a rule changes [KeyVersion]: a rule that
// normalises an accepted input differently, or an encoding change. Accepting
// an input that was refused before does not, as no key existed for it (the
// sex codes of other languages, below).
//
// # Field types
//
// The session spec gives each logical field a [Type]. The matchable types
// (name, date, sex, id) are normalised by [Normalize]; number and codes are
// attributes, never part of a key.
//
// # Names ([NormalizeName])
//
// In order:
//
//  1. The input must be valid UTF-8 ([ErrInvalidUTF8]).
//  2. Unicode NFKC: compatibility characters become their plain forms
//     (full-width "ＺＨＡＮＧ" → "ZHANG", half-width katakana to full-width,
//     ligatures "ﬁ" → "fi", "Ⅻ" → "XII", "™" → "TM").
//  3. Full Unicode case folding (golang.org/x/text/cases.Fold): "ß" and
//     "ẞ" → "ss", "İ" → "i̇". Cherokee folds to capitals, as Unicode
//     specifies (x/text folds it both ways, golang/go#46101, which this
//     package corrects).
//  4. Compatibility decomposition (NFKD), then each rune is classified as
//     below.
//  5. NFC.
//  6. An empty result is [ErrEmpty].
//
// The classification of step 4:
//
//   - Letters and numbers are kept, digits too: Synthea's "Fredric73"
//     stays "fredric73".
//   - Whitespace (Unicode White_Space) and dashes (category Pd: "-", "‐",
//     "–", "—", ...) separate words: each run becomes one space, none at
//     either end. Hyphenated and spaced double names agree:
//     "Álvarez-Núñez" = "Álvarez Núñez" = "alvarez nunez".
//   - No space is kept between two Han, Hiragana, Katakana or Hangul
//     characters, as names in those scripts are written with or without
//     one: "张 伟" = "张伟".
//   - Combining marks on Latin, Greek, Cyrillic, Arabic and Hebrew letters
//     are dropped (accents, tonos, harakat, niqqud): "é" → "e", "Ё" → "е",
//     "й" → "и", "أ" → "ا". On other scripts they carry the letter's
//     identity and are kept: "ガ" stays "ガ" (not "カ"), Indic vowel signs
//     stay. A mark after a separator, after a digit or with no base
//     letter is dropped.
//   - Everything else is dropped without separating words: other
//     punctuation ("O'Brien" → "obrien", "J.R.R." → "jrr"), symbols,
//     control and format characters (zero-width space, BOM), the modifier
//     letters of the Spacing Modifier Letters block (ʻ ʼ), unassigned code
//     points.
//
// The result is idempotent (NormalizeName of an output returns it), valid
// UTF-8 and NFC. Latin letters with a stroke and ligatures, which have no
// decomposition but which exports often write in ASCII, are transliterated:
// "ø" → "o", "ł" → "l", "đ" and "ð" → "d", "ħ" → "h", "ŧ" → "t", "ı" → "i",
// "æ" → "ae", "œ" → "oe", "þ" → "th", so "Łukasz" = "Lukasz" and
// "Søren" = "Soren". Pure-ASCII input takes a fast path, and so does ASCII
// mixed with precomposed Latin-1 letters (U+00C0..U+00FF, by a table), each
// giving the same result as the general path (tested on every short input,
// every Latin-1 letter in context and on random strings). [AppendName],
// [AppendID], [Layout.Append] and [AppendNormalized] write the same normal
// forms into a caller's buffer, without allocating on those paths.
//
// Examples:
//
//	input                   NormalizeName
//	"José Álvarez-Núñez"    "jose alvarez nunez"
//	"  MÜLLER  "            "muller"
//	"O'Brien", "O’Brien"    "obrien"
//	"Zoë"                   "zoe"
//	"Ångström"              "angstrom"
//	"Straße", "STRAẞE"      "strasse"
//	"J.R.R. Tolkien"        "jrr tolkien"
//	"Smith, Jr."            "smith jr"
//	"Jean - Pierre"         "jean pierre"
//	"Fredric73"             "fredric73"
//	"Γιώργος"               "γιωργοσ"
//	"Андрей Ёлкин"          "андреи елкин"
//	"张 伟", "张伟"          "张伟"
//	"ＺＨＡＮＧ　Ｗｅｉ"        "zhang wei"
//	"ｶﾞﾝﾀﾞﾑ"                "ガンダム"
//	"ジョン・スミス"           "ジョンスミス"
//	"김 민준"                "김민준"
//	"", "  ", "-'."         ErrEmpty
//
// # Identifiers ([NormalizeID])
//
// National ids, MRNs, passport and licence numbers: valid UTF-8, NFKC,
// full case folding, NFKD, then only letters, numbers and combining marks
// are kept (all whitespace, punctuation such as dashes, dots and slashes,
// and symbols are dropped), NFC. Leading zeros are significant.
//
//	input                   NormalizeID
//	"999-12-3456"           "999123456"
//	" 999 12 3456 "         "999123456"
//	"９９９－１２－３４５６"    "999123456"
//	"S99984236"             "s99984236"
//	"12.345/678"            "12345678"
//	"MRN#42+"               "mrn42"
//	"007"                   "007"
//
// # Dates ([Layout.Normalize])
//
// A date column is read with the [Layout] declared in the mapping file,
// written with YYYY, MM and DD, or M and D for a month or day with an
// optional leading zero, and single-character ASCII separators:
// "MM/DD/YYYY", "DD.MM.YYYY", "YYYYMMDD", "DD-MM-YYYY", "M/D/YYYY". The
// zero Layout is [DefaultLayout], "YYYY-MM-DD". Two-digit years (YY) are
// refused as ambiguous ([ErrBadLayout]).
//
// Parsing is strict: after trimming surrounding whitespace, the value
// must match the layout exactly, with ASCII digits (MM is two digits;
// no times, no "T00:00:00"). The date must exist in the Gregorian calendar
// and lie in [MinYear]..[MaxYear]. The output is ISO 8601 "YYYY-MM-DD".
//
//	layout        input           result
//	YYYY-MM-DD    "1989-05-25"    "1989-05-25"
//	MM/DD/YYYY    "05/25/1989"    "1989-05-25"
//	M/D/YYYY      "5/3/2020"      "2020-05-03"
//	DD.MM.YYYY    "29.02.2000"    "2000-02-29"
//	YYYYMMDD      "19890525"      "1989-05-25"
//	DD-MM-YYYY    "27-08-1941"    "1941-08-27"
//	DD-MM-YYYY    "27/08/1941"    ErrBadDate: does not match layout DD-MM-YYYY
//	DD-MM-YYYY    "22-12-2972"    ErrBadDate: year 2972 outside 1800..2200
//	YYYY-MM-DD    "2001-02-29"    ErrBadDate: day 29 outside 1..28 for 2001-02
//	YYYY-MM-DD    "1989-13-01"    ErrBadDate: month 13 outside 1..12
//	MM/DD/YYYY    "5/25/1989"     ErrBadDate: does not match layout MM/DD/YYYY
//
// # Sex ([NormalizeSex], [SexCodes])
//
// Trimmed, NFKC, case-folded, accents removed (NFD, combining marks
// dropped, NFC; "ä" is "a", and "ae" is listed where German writes it),
// then mapped to "M", "F" or "U" by the hospital's own codes ([SexCodes],
// the mapping's sex_codes) first, then this table:
//
//	lang      M                         F                          U
//	-         m  1  男                  f  w  2  女                u  x  i  0  9
//	en        male man masc masculine   female woman fem feminine  unknown other unspecified undetermined indeterminate
//	de        männlich maennlich mann   weiblich frau              divers unbekannt unbestimmt
//	fr        masculin homme            féminin femme              inconnu autre indéterminé
//	es        masculino hombre varón    femenino mujer             desconocido otro indeterminado
//	pt        masculino homem           feminino mulher            desconhecido outro ignorado indeterminado
//	it        maschio maschile uomo     femmina femminile donna    sconosciuto altro indeterminato
//	nl        mannelijk man             vrouwelijk vrouw           onbekend anders overig
//
// The digits follow ISO/IEC 5218 (0 not known, 1 male, 2 female, 9 not
// applicable); U is unknown, neither male nor female (German "divers"), or
// not applicable. An empty value is [ErrEmpty], not "U": missing data is
// reported, never silently matched as unknown. Anything else is
// [ErrBadSex] ("mals", "M.", "6" included); no error quotes the value.
//
// Single letters are where languages disagree, and a wrong reading is
// silent: it makes keys that never match, or match the wrong patient.
// The initials above mean the same in every code list this package knows
// (w is only ever weiblich/woman, i indéterminé/ignorado). The letters h,
// v and d do not, and are refused with [ErrAmbiguousSex] (which also
// wraps ErrBadSex) until the hospital declares its codes:
//
//	h   homme/hombre/homem (male); accepting it alone would be wrong, as
//	    the Spanish and Portuguese H/M lists use m for mujer/mulher
//	    (female), which the table reads as male
//	v   vrouw (Dutch M/V: female) or varón (Spanish V/M: male)
//	d   divers (German m/w/d: U) or donna (Italian U/D: female)
//
// The mapping declares them per column, overriding the table for the
// codes it lists (the words keep their meaning):
//
//	export codes        mapping's sex_codes
//	H / M  (es, pt)     {"H": "M", "M": "F"}
//	M / V  (nl)         {"V": "F"}
//	m / w / d  (de)     {"D": "U"}
//	V / M  (es)         {"V": "M", "M": "F"}
//	1 / 6  (Spain INE)  {"6": "F"}   (INE microdata: 1 hombre, 6 mujer)
//
// A loader should stop at an ambiguous code even when it skips bad rows:
// a file with h in it probably has m for female in its other rows. The
// refusal only catches a file that holds one of these letters: an H/M
// export of women only reads as all male, so a hospital whose exports use
// a list other than M/F declares it whatever a given file holds.
//
// Accepting these spellings did not change [KeyVersion]: every code the
// table accepted before (m, male, man, 1, 男, f, female, woman, 2, 女, u,
// unknown, other, x, 0, 9, in any case and width) maps as before, so no
// key made from an input accepted before changes; the new codes were
// refused before, so no key existed for them. A party on an older build
// refuses rows a newer one accepts; it never makes a different key for
// the same input. A hospital's sex_codes change only how its own export
// is read, into the same M/F/U.
//
// # Keys ([AppendKey], [AppendKeyField], [DecodeKey])
//
// A key is the byte [KeyVersion] followed, for each match field in the
// session spec's order, by
//
//	uvarint(len(name)) name uvarint(len(value)) value
//
// The fields are tagged with their names and every string is length-
// prefixed, so the encoding is injective: ("ab", "c") and ("a", "bc")
// never collide, and neither do lists of different lengths. [DecodeKey]
// accepts exactly the outputs of AppendKey (no trailing bytes, minimal
// varints, the current version).
//
//	fields                                  key (hex)
//	(none)                                  01
//	{n "ab"} {m "c"}                        01 01 6e 02 6162 01 6d 01 63
//	{n "a"} {m "bc"}                        01 01 6e 01 61 01 6d 02 6263
//
// # Secrets
//
// Names, identifiers, dates of birth and sex are secret, and so are the
// normalised values and keys: they leave a party only as tokens. Errors
// about names, identifiers and sex never quote the value. Errors about
// dates and layouts do quote the offending text (truncated to 40 bytes),
// because a value that does not parse is needed to fix the export; such
// errors stay in the party's own report and must not be sent to the
// coordinator or other parties: psi/protocol's Redact replaces any error
// wrapping [ErrBadDate], [ErrBadSex], [ErrEmpty] or [ErrInvalidUTF8] by its
// code and a random reference before a party's Abort leaves it. Key
// decoding errors hold no key material.
//
// # Constant time
//
// Nothing here is constant time: normalisation branches and allocates on
// the content of the values. This is accepted, as it runs locally on the
// party's own records before anything is tokenised, and the only
// observable is the time to load a whole file.
//
// # Concurrency
//
// The package has no mutable state; all functions are safe for concurrent
// use, and [Layout] is an immutable value.
package ident
