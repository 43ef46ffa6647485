package clk

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// This file reproduces the value normalisation of clkhash 0.18.3, which
// leans on Python's int(), float(), round() and datetime.strptime. Where
// Python accepts more than the subset reproduced here (non-ASCII digits and
// spaces, digit-group underscores in floats, strptime directives other than
// %Y %y %m %d %b %B %H %M %S %%), the value or schema is refused: the
// encoder never emits a CLK that differs from clkhash's, it may only decline
// a record clkhash would encode.

var (
	errNotInteger = errors.New("not a base-10 integer")
	errNotNumber  = errors.New("not a decimal number")
)

// pyIntGrammar is Python's int(s, 10) over ASCII: a sign, digits, single
// underscores between digits. Leading zeros are allowed.
var pyIntGrammar = regexp.MustCompile(`\A[+-]?[0-9]+(?:_[0-9]+)*\z`)

// pyFloatGrammar is the ASCII subset of Python's float() without
// underscores, infinities and NaNs.
var pyFloatGrammar = regexp.MustCompile(`\A[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\z`)

// pyStrip trims the ASCII whitespace Python's int() and float() skip.
func pyStrip(s string) (string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return "", false // Python would also strip or translate some of these
		}
	}
	return strings.Trim(s, " \t\n\v\f\r"), true
}

// parsePyInt is int(s, 10).
func parsePyInt(s string) (*big.Int, error) {
	t, ok := pyStrip(s)
	if !ok || !pyIntGrammar.MatchString(t) {
		return nil, errNotInteger
	}
	v, ok := new(big.Int).SetString(strings.ReplaceAll(t, "_", ""), 10)
	if !ok {
		return nil, errNotInteger
	}
	return v, nil
}

// distanceInterval is int(round(thresholdDistance * 10**fp)) for the
// schema's JSON number (a Python int when written without fraction or
// exponent, a float otherwise).
func distanceInterval(lit string, fp int) (*big.Int, error) {
	var d *big.Int
	if pyIntGrammar.MatchString(lit) {
		d, _ = new(big.Int).SetString(lit, 10)
		d.Mul(d, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(fp)), nil))
	} else {
		f, err := strconv.ParseFloat(lit, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("must be a finite number")
		}
		r := math.RoundToEven(f * math.Pow10(fp))
		if math.IsInf(r, 0) {
			return nil, fmt.Errorf("too large")
		}
		d, _ = new(big.Float).SetFloat64(r).Int(nil)
	}
	if d.Sign() <= 0 {
		return nil, fmt.Errorf("must be positive at fractional_precision %d", fp)
	}
	if d.BitLen() > 53 {
		// residue < d/2 is a float comparison in clkhash; it is exact only
		// while d/2 is.
		return nil, fmt.Errorf("too large (the distance interval must stay below 2^53)")
	}
	return d, nil
}

// numericTokens is clkhash's NumericComparison.tokenize for a non-empty
// value.
func numericTokens(word string, c *Comparison) ([]string, error) {
	var v *big.Int
	if iv, err := parsePyInt(word); err == nil {
		v = iv
		if c.FractionalPrecision > 0 {
			v.Mul(v, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(c.FractionalPrecision)), nil))
		}
	} else {
		t, ok := pyStrip(word)
		if !ok || !pyFloatGrammar.MatchString(t) {
			return nil, errNotNumber
		}
		f, err := strconv.ParseFloat(t, 64)
		if err != nil || math.IsInf(f, 0) {
			// clkhash raises OverflowError on int(inf)
			return nil, errNotNumber
		}
		if c.FractionalPrecision > 0 {
			f = math.RoundToEven(f * math.Pow10(c.FractionalPrecision))
			if math.IsInf(f, 0) {
				return nil, errNotNumber
			}
		}
		v, _ = new(big.Float).SetFloat64(f).Int(nil) // truncates toward zero, as int(float)
	}
	d := c.distanceInterval
	v.Mul(v, big.NewInt(2*int64(c.Resolution)))
	residue := new(big.Int).Mod(v, d) // d > 0: non-negative, as Python's %
	if residue.Sign() != 0 {
		twice := new(big.Int).Lsh(residue, 1)
		if twice.Cmp(d) < 0 {
			v.Sub(v, residue)
		} else {
			v.Add(v, d).Sub(v, residue)
		}
	}
	out := make([]string, 0, 2*c.Resolution+1)
	for i := -c.Resolution; i <= c.Resolution; i++ {
		t := new(big.Int).Mul(big.NewInt(int64(i)), d)
		out = append(out, t.Add(t, v).String())
	}
	return out, nil
}

// dateLayout is a strptime format compiled the way Python's _strptime
// compiles it: a case-insensitive regular expression, matched from the
// start with leftmost-first alternation, which must consume the whole value.
type dateLayout struct {
	re *regexp.Regexp
}

var strptimeDirectives = map[byte]string{
	'd': `(?P<d>3[0-1]|[1-2]\d|0[1-9]|[1-9]| [1-9])`,
	'H': `(?P<H>2[0-3]|[0-1]\d|\d)`,
	'm': `(?P<m>1[0-2]|0[1-9]|[1-9])`,
	'M': `(?P<M>[0-5]\d|\d)`,
	'S': `(?P<S>6[0-1]|[0-5]\d|\d)`,
	'y': `(?P<y>\d\d)`,
	'Y': `(?P<Y>\d\d\d\d)`,
	'B': `(?P<B>september|february|november|december|january|october|august|july|march|april|june|may)`,
	'b': `(?P<b>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)`,
	'%': `%`,
}

var monthIndex = func() map[string]int {
	m := map[string]int{}
	for i, n := range []string{"january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"} {
		m[n] = i + 1
		m[n[:3]] = i + 1
	}
	return m
}()

func parseDateLayout(format string) (*dateLayout, error) {
	var b strings.Builder
	b.WriteString(`\A(?i:`)
	used := map[byte]bool{}
	for i := 0; i < len(format); i++ {
		c := format[i]
		switch {
		case c == '%':
			if i+1 == len(format) {
				return nil, fmt.Errorf("stray %% at the end of date format")
			}
			i++
			d := format[i]
			re, ok := strptimeDirectives[d]
			if !ok {
				return nil, fmt.Errorf("strptime directive %%%c is not supported (supported: %%Y %%y %%m %%d %%b %%B %%H %%M %%S %%%%)", d)
			}
			if d != '%' {
				if used[d] {
					return nil, fmt.Errorf("strptime directive %%%c appears twice", d)
				}
				used[d] = true
			}
			b.WriteString(re)
		case c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r':
			j := i
			for j+1 < len(format) && strings.IndexByte(" \t\n\v\f\r", format[j+1]) >= 0 {
				j++
			}
			i = j
			b.WriteString(`\s+`)
		case c >= 0x80:
			return nil, fmt.Errorf("date format must be ASCII")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(`)`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("date format: %v", err)
	}
	return &dateLayout{re: re}, nil
}

var errDate = errors.New("does not match the date format or is not a valid date")

// format parses value and returns it as clkhash's %Y%m%d. Years before 1000
// are refused: Python's strftime pads them differently across versions.
func (l *dateLayout) format(value string) (string, error) {
	for i := 0; i < len(value); i++ {
		if value[i] >= 0x80 {
			return "", errDate // Python's \d and \s match non-ASCII too; refuse
		}
	}
	m := l.re.FindStringSubmatchIndex(value)
	if m == nil || m[1] != len(value) {
		return "", errDate
	}
	year, month, day := 1900, 1, 1
	for i, name := range l.re.SubexpNames() {
		if name == "" || m[2*i] < 0 {
			continue
		}
		s := value[m[2*i]:m[2*i+1]]
		n, _ := strconv.Atoi(strings.TrimSpace(s))
		switch name {
		case "Y":
			year = n
		case "y":
			if n <= 68 {
				year = 2000 + n
			} else {
				year = 1900 + n
			}
		case "m":
			month = n
		case "d":
			day = n
		case "b", "B":
			month = monthIndex[strings.ToLower(s)]
		}
	}
	if year < 1000 {
		return "", fmt.Errorf("%w (years before 1000 are refused)", errDate)
	}
	if day > daysIn(year, month) {
		return "", errDate
	}
	return fmt.Sprintf("%04d%02d%02d", year, month, day), nil
}

// daysIn is the number of days of month (1..12) in year, proleptic
// Gregorian, as Python's datetime checks it.
func daysIn(year, month int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
