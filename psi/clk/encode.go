package clk

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/crypto/blake2b"
)

// ErrRecord is wrapped by every error about a record that cannot be
// encoded. The concrete error is a [*RecordError]; it names the row and the
// feature, never the value.
var ErrRecord = errors.New("clk: invalid record")

// RecordError reports a record value that the schema refuses.
type RecordError struct {
	Row     int    // 0-based index in the batch; -1 when encoding one record
	Feature string // the schema identifier of the column
	Column  int    // 0-based column index
	Reason  string // never contains the value
}

// Error names the row, column and feature, never the value.
func (e *RecordError) Error() string {
	where := ""
	if e.Row >= 0 {
		where = fmt.Sprintf("row %d, ", e.Row)
	}
	return fmt.Sprintf("clk: %scolumn %d (%q): %s", where, e.Column, e.Feature, e.Reason)
}

// Unwrap makes errors.Is(err, ErrRecord) hold.
func (e *RecordError) Unwrap() error { return ErrRecord }

// Encoder turns records into CLKs under one schema and one secret. It is
// safe for concurrent use. The derived keys are secret: an Encoder must not
// be logged or shared.
type Encoder struct {
	schema *Schema
	hashL  int // filter length before folding
	feats  []featureKeys
	pool   sync.Pool
}

type featureKeys struct {
	sha1Key, md5Key []byte       // doubleHash
	blake           *saltedBlake // blakeHash
}

// scratch is one goroutine's reusable hashing state.
type scratch struct {
	filter []byte
	sha1   []hash.Hash
	md5    []hash.Hash
	blake  [blake2b.Size]byte
	state  []byte
	buf    []byte
}

// NewEncoder derives the per-feature keys from secret with the schema's
// HKDF parameters, as clkhash's generate_key_lists does: two keys of
// kdf.keySize bytes per feature (ignored ones included), in feature order.
func NewEncoder(s *Schema, secret []byte) (*Encoder, error) {
	if len(secret) == 0 {
		return nil, errors.New("clk: empty secret")
	}
	h := sha256.New
	if s.KDF.Hash == "SHA512" {
		h = sha512.New
	}
	n := 2 * len(s.Features)
	keys, err := hkdf.Key(h, secret, s.KDF.Salt, string(s.KDF.Info), n*s.KDF.KeySize)
	if err != nil {
		return nil, fmt.Errorf("clk: hkdf: %w", err)
	}
	e := &Encoder{schema: s, hashL: s.Bits << s.XORFolds, feats: make([]featureKeys, len(s.Features))}
	for i, f := range s.Features {
		k0 := keys[(2*i)*s.KDF.KeySize : (2*i+1)*s.KDF.KeySize]
		k1 := keys[(2*i+1)*s.KDF.KeySize : (2*i+2)*s.KDF.KeySize]
		if f.Ignored {
			continue
		}
		switch f.Hashing.Hash {
		case DoubleHash:
			e.feats[i] = featureKeys{sha1Key: k0, md5Key: k1}
		case BlakeHash:
			b, err := newSaltedBlake(k0)
			if err != nil {
				return nil, err
			}
			e.feats[i] = featureKeys{blake: b}
		}
	}
	e.pool.New = func() any {
		sc := &scratch{
			filter: make([]byte, (e.hashL+7)/8),
			sha1:   make([]hash.Hash, len(e.feats)),
			md5:    make([]hash.Hash, len(e.feats)),
		}
		for i, fk := range e.feats {
			if fk.sha1Key != nil {
				sc.sha1[i] = hmac.New(sha1.New, fk.sha1Key)
				sc.md5[i] = hmac.New(md5.New, fk.md5Key)
			}
		}
		return sc
	}
	return e, nil
}

// String describes the encoder without its keys, so that a stray %v in a
// log line cannot print them.
func (e *Encoder) String() string {
	fp := e.schema.Fingerprint()
	return fmt.Sprintf("clk.Encoder{schema %x, %d features, keys redacted}", fp[:8], len(e.schema.Features))
}

// GoString is String, for %#v.
func (e *Encoder) GoString() string { return e.String() }

// Schema returns the encoder's schema.
func (e *Encoder) Schema() *Schema { return e.schema }

// Encode returns the CLK of one record: a row of strings, one per feature in
// schema order (ignored features included), as clkhash reads a CSV row.
// The CLK has Schema().Bytes() bytes, bit i of the filter being the bit
// 0x80>>(i%8) of byte i/8 (bitarray's big-endian order, as clkhash
// serialises it).
func (e *Encoder) Encode(record []string) ([]byte, error) {
	sc := e.pool.Get().(*scratch)
	defer e.pool.Put(sc)
	return e.encode(sc, record, -1)
}

// EncodeAll encodes records with up to workers goroutines (GOMAXPROCS when
// workers <= 0). It returns the first error, by row order, and no CLKs.
func (e *Encoder) EncodeAll(ctx context.Context, records [][]string, workers int) ([][]byte, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	out := make([][]byte, len(records))
	errs := make([]error, workers)
	const chunk = 256
	var next sync.Mutex
	pos := 0
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			sc := e.pool.Get().(*scratch)
			defer e.pool.Put(sc)
			for {
				if err := ctx.Err(); err != nil {
					errs[w] = err
					return
				}
				next.Lock()
				lo := pos
				pos += chunk
				next.Unlock()
				if lo >= len(records) {
					return
				}
				for i := lo; i < min(lo+chunk, len(records)); i++ {
					c, err := e.encode(sc, records[i], i)
					if err != nil {
						errs[w] = err
						return
					}
					out[i] = c
				}
			}
		}(w)
	}
	wg.Wait()
	var first error
	firstRow := len(records)
	for _, err := range errs {
		var re *RecordError
		switch {
		case err == nil:
		case errors.As(err, &re) && re.Row < firstRow:
			first, firstRow = err, re.Row
		case first == nil:
			first = err
		}
	}
	if first != nil {
		return nil, first
	}
	return out, nil
}

func (e *Encoder) encode(sc *scratch, record []string, row int) ([]byte, error) {
	s := e.schema
	if len(record) != len(s.Features) {
		return nil, &RecordError{Row: row, Column: -1, Feature: "", Reason: fmt.Sprintf("has %d values, the schema has %d features", len(record), len(s.Features))}
	}
	clear(sc.filter)
	l := uint64(e.hashL)
	for i := range s.Features {
		f := &s.Features[i]
		if f.Ignored {
			continue
		}
		tokens, reason := tokenize(f, record[i])
		if reason != "" {
			return nil, &RecordError{Row: row, Column: i, Feature: f.Identifier, Reason: reason}
		}
		if len(tokens) == 0 {
			continue
		}
		for t, tok := range tokens {
			k := f.Hashing.BitsPerToken
			if k == 0 {
				bpf := f.Hashing.BitsPerFeature
				k = bpf / len(tokens)
				if t < bpf%len(tokens) {
					k++
				}
			}
			sc.buf = appendEncoded(sc.buf[:0], tok, f.Format.Encoding)
			switch f.Hashing.Hash {
			case DoubleHash:
				sha1h, md5h := e.doubleHash(sc, i, sc.buf, f.Hashing.PreventSingularity)
				for j := 0; j < k; j++ {
					setBit(sc.filter, (sha1h+uint64(j)*md5h)%l)
				}
			case BlakeHash:
				fk := &e.feats[i]
				for mac := 0; mac*32 < k; mac++ {
					sc.state = fk.blake.sum(&sc.blake, []byte(strconv.Itoa(mac)), sc.buf, sc.state)
					for j := mac * 32; j < min(k, mac*32+32); j++ {
						idx := uint64(binary.LittleEndian.Uint16(sc.blake[2*(j-mac*32):])) % l
						setBit(sc.filter, idx)
					}
				}
			}
		}
	}
	return fold(sc.filter, e.hashL, s.XORFolds, s.Bits), nil
}

// doubleHash returns int(HMAC-SHA1) mod l and int(HMAC-MD5) mod l, the
// digests read as big-endian integers; with prevent_singularity, a zero MD5
// residue is re-drawn from HMAC-MD5(m || chr(i)) for i = 0, 1, …
func (e *Encoder) doubleHash(sc *scratch, feat int, m []byte, nonSingular bool) (sha1h, md5h uint64) {
	l := uint64(e.hashL)
	var d [sha1.Size]byte
	h := sc.sha1[feat]
	h.Reset()
	h.Write(m)
	sha1h = modBE(h.Sum(d[:0]), l)
	h = sc.md5[feat]
	h.Reset()
	h.Write(m)
	md5h = modBE(h.Sum(d[:0]), l)
	for i := 0; nonSingular && md5h == 0; i++ {
		h.Reset()
		h.Write(m)
		h.Write([]byte(string(rune(i))))
		md5h = modBE(h.Sum(d[:0]), l)
	}
	return sha1h, md5h
}

func modBE(b []byte, l uint64) uint64 {
	var r uint64
	for _, x := range b {
		r = (r<<8 | uint64(x)) % l
	}
	return r
}

func setBit(f []byte, i uint64) { f[i>>3] |= 0x80 >> (i & 7) }

func getBit(f []byte, i int) byte { return (f[i>>3] >> (7 - uint(i&7))) & 1 }

// fold XOR-folds a filter of n bits folds times (first half xor second half)
// and returns a fresh slice of (bits+7)/8 bytes.
func fold(f []byte, n, folds, bits int) []byte {
	out := make([]byte, (bits+7)/8)
	if folds == 0 {
		copy(out, f)
		return out
	}
	cur := append([]byte(nil), f...)
	for ; folds > 0; folds-- {
		half := n / 2
		next := make([]byte, (half+7)/8)
		for i := 0; i < half; i++ {
			if getBit(cur, i)^getBit(cur, i+half) == 1 {
				setBit(next, uint64(i))
			}
		}
		cur, n = next, half
	}
	copy(out, cur)
	return out
}

// appendEncoded encodes a token as Python's str.encode(encoding) does.
func appendEncoded(dst []byte, tok, encoding string) []byte {
	switch encoding {
	case "utf-16":
		dst = append(dst, 0xff, 0xfe)
		for _, r := range tok {
			if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
				dst = binary.LittleEndian.AppendUint16(dst, uint16(r1))
				dst = binary.LittleEndian.AppendUint16(dst, uint16(r2))
			} else {
				dst = binary.LittleEndian.AppendUint16(dst, uint16(r))
			}
		}
		return dst
	case "utf-32":
		dst = append(dst, 0xff, 0xfe, 0, 0)
		for _, r := range tok {
			dst = binary.LittleEndian.AppendUint32(dst, uint32(r))
		}
		return dst
	}
	return append(dst, tok...) // utf-8 and (validated) ascii
}

// tokenize normalises and validates one value and returns its tokens, or a
// reason (without the value) why it is refused.
func tokenize(f *Feature, value string) ([]string, string) {
	h := &f.Hashing
	if h.Missing != nil && value == h.Missing.Sentinel {
		value = h.Missing.ReplaceWith // not validated, not reformatted
	} else {
		if !utf8.ValidString(value) {
			return nil, "not valid UTF-8"
		}
		var reason string
		value, reason = normalise(&f.Format, value)
		if reason != "" {
			return nil, reason
		}
	}
	c := &h.Comparison
	if value == "" {
		return nil, ""
	}
	switch c.Type {
	case ComparisonExact:
		return []string{value}, ""
	case ComparisonNumeric:
		toks, err := numericTokens(value, c)
		if err != nil {
			return nil, "numeric comparison: " + err.Error()
		}
		return toks, ""
	}
	runes := []rune(value)
	if c.N > 1 {
		pad := make([]rune, c.N-1)
		for i := range pad {
			pad[i] = ' '
		}
		runes = append(append(append([]rune{}, pad...), runes...), pad...)
	}
	if len(runes) < c.N {
		return nil, ""
	}
	out := make([]string, 0, len(runes)-c.N+1)
	for i := 0; i+c.N <= len(runes); i++ {
		g := string(runes[i : i+c.N])
		if c.Positional {
			g = strconv.Itoa(i+1) + " " + g
		}
		out = append(out, g)
	}
	return out, ""
}

// normalise validates a value against its format and returns the string
// clkhash tokenises.
func normalise(f *Format, value string) (string, string) {
	switch f.Type {
	case FormatString:
		if f.Encoding == "ascii" {
			for i := 0; i < len(value); i++ {
				if value[i] >= 0x80 {
					return "", "not encodable as ascii"
				}
			}
		}
		if f.pattern != nil {
			if !f.pattern.MatchString(value) {
				return "", "does not match the format's pattern"
			}
			return value, ""
		}
		n := utf8.RuneCountInString(value)
		if f.MinLength != nil && n < *f.MinLength {
			return "", fmt.Sprintf("shorter than minLength %d", *f.MinLength)
		}
		if f.MaxLength != nil && n > *f.MaxLength {
			return "", fmt.Sprintf("longer than maxLength %d", *f.MaxLength)
		}
		switch f.Case {
		case "upper":
			if strings.ToUpper(value) != value {
				return "", "not upper case"
			}
		case "lower":
			if strings.ToLower(value) != value {
				return "", "not lower case"
			}
		}
		return value, ""
	case FormatInteger:
		v, err := parsePyInt(value)
		if err != nil {
			return "", err.Error()
		}
		if f.Minimum != nil && v.Cmp(f.Minimum) < 0 {
			return "", "below the format's minimum"
		}
		if f.Maximum != nil && v.Cmp(f.Maximum) > 0 {
			return "", "above the format's maximum"
		}
		return v.String(), ""
	case FormatDate:
		out, err := f.date.format(value)
		if err != nil {
			return "", err.Error()
		}
		return out, ""
	case FormatEnum:
		if !f.values[value] {
			return "", "not one of the enum's values"
		}
		return value, ""
	}
	return "", "unknown format"
}
