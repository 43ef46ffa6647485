package upload

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Limits of the WFDB header parser.
const (
	maxHeaderSize = 64 << 10
	maxSignals    = 64
)

// Header is a parsed WFDB header (.hea) of a single-segment record.
type Header struct {
	Record     string
	NumSignals int
	Frequency  float64
	NumSamples int64 // per signal; 0 if not given
	Signals    []SignalSpec
}

// SignalSpec is one signal line of a WFDB header.
type SignalSpec struct {
	File        string
	Format      int
	InitValue   int
	Checksum    int16
	HasChecksum bool
	Description string
}

// ParseHeader parses a WFDB header. It understands the record line and the
// signal lines (comments and blank lines are skipped); multi-segment records
// are rejected. Errors wrap ErrMalformed.
func ParseHeader(data []byte) (*Header, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: wfdb header: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	if len(data) > maxHeaderSize {
		return nil, bad("larger than %d bytes", maxHeaderSize)
	}
	var h *Header
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxHeaderSize)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Fields(line)
		if h == nil {
			if len(fields) < 2 {
				return nil, bad("short record line")
			}
			if strings.Contains(fields[0], "/") {
				return nil, bad("multi-segment records are not supported")
			}
			n, err := strconv.Atoi(fields[1])
			if err != nil || n < 0 || n > maxSignals {
				return nil, bad("signal count %q", fields[1])
			}
			h = &Header{Record: fields[0], NumSignals: n, Frequency: 250}
			if len(fields) > 2 {
				f, err := strconv.ParseFloat(strings.SplitN(fields[2], "/", 2)[0], 64)
				if err != nil || !(f > 0) || math.IsInf(f, 0) {
					return nil, bad("frequency %q", fields[2])
				}
				h.Frequency = f
			}
			if len(fields) > 3 {
				ns, err := strconv.ParseInt(fields[3], 10, 64)
				if err != nil || ns < 0 {
					return nil, bad("sample count %q", fields[3])
				}
				h.NumSamples = ns
			}
			continue
		}
		if len(h.Signals) == h.NumSignals {
			return nil, bad("more signal lines than the %d announced", h.NumSignals)
		}
		if len(fields) < 2 {
			return nil, bad("short signal line")
		}
		parts := strings.FieldsFunc(fields[1], func(r rune) bool { return r == 'x' || r == ':' || r == '+' })
		if len(parts) == 0 {
			return nil, bad("format %q", fields[1])
		}
		format, err := strconv.Atoi(parts[0])
		if err != nil {
			return nil, bad("format %q", fields[1])
		}
		sig := SignalSpec{File: fields[0], Format: format}
		if len(fields) > 5 {
			v, err := strconv.Atoi(fields[5])
			if err != nil {
				return nil, bad("initial value %q", fields[5])
			}
			sig.InitValue = v
		}
		if len(fields) > 6 {
			v, err := strconv.Atoi(fields[6])
			if err != nil || v < math.MinInt16 || v > math.MaxUint16 {
				return nil, bad("checksum %q", fields[6])
			}
			sig.Checksum, sig.HasChecksum = int16(uint16(v)), true
		}
		if len(fields) > 8 {
			sig.Description = strings.Join(fields[8:], " ")
		}
		h.Signals = append(h.Signals, sig)
	}
	if err := sc.Err(); err != nil {
		return nil, bad("%v", err)
	}
	if h == nil {
		return nil, bad("no record line")
	}
	if len(h.Signals) != h.NumSignals {
		return nil, bad("%d signal lines, %d announced", len(h.Signals), h.NumSignals)
	}
	return h, nil
}

// DecodeSamples decodes the interleaved samples of nsig signals stored in
// data in WFDB format 212 (two 12-bit samples in three bytes) or 16 (16-bit
// little-endian). It returns one slice per signal. A trailing partial frame
// is ignored, as WFDB does. Errors wrap ErrMalformed.
func DecodeSamples(format, nsig int, data []byte) ([][]int16, error) {
	if nsig <= 0 || nsig > maxSignals {
		return nil, fmt.Errorf("%w: %d signals", ErrMalformed, nsig)
	}
	var flat []int16
	switch format {
	case 212:
		flat = make([]int16, 0, len(data)/3*2)
		for i := 0; i+3 <= len(data); i += 3 {
			b0, b1, b2 := int16(data[i]), int16(data[i+1]), int16(data[i+2])
			s0 := b0 | (b1&0x0f)<<8
			s1 := b2 | (b1&0xf0)<<4
			flat = append(flat, s0<<4>>4, s1<<4>>4) // sign-extend 12 bits
		}
		if len(data)%3 == 2 { // one more sample fits in two bytes
			flat = append(flat, (int16(data[len(data)-2])|(int16(data[len(data)-1])&0x0f)<<8)<<4>>4)
		}
	case 16:
		flat = make([]int16, len(data)/2)
		for i := range flat {
			flat[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
		}
	default:
		return nil, fmt.Errorf("%w: unsupported format %d", ErrMalformed, format)
	}
	frames := len(flat) / nsig
	out := make([][]int16, nsig)
	for s := range out {
		out[s] = make([]int16, frames)
		for f := 0; f < frames; f++ {
			out[s][f] = flat[f*nsig+s]
		}
	}
	return out, nil
}

// Checksum returns the WFDB checksum of samples: their sum modulo 2^16, as
// a signed 16-bit value.
func Checksum(samples []int16) int16 {
	var sum uint16
	for _, v := range samples {
		sum += uint16(v)
	}
	return int16(sum)
}

// SignalCheck is the outcome of checking one signal against its header.
type SignalCheck struct {
	Description string
	Samples     int
	Want, Got   int16
}

// VerifyRecord decodes every signal of the record whose header is hea,
// reading signal files through files, and checks the sample count, the
// initial value and the checksum against the header. It returns one
// SignalCheck per signal and an error describing the first mismatch.
func VerifyRecord(hea []byte, files map[string][]byte) ([]SignalCheck, error) {
	h, err := ParseHeader(hea)
	if err != nil {
		return nil, err
	}
	// Group signals by file, keeping their order within each file.
	type group struct {
		format  int
		signals []int
	}
	groups := map[string]*group{}
	var order []string
	for i, s := range h.Signals {
		g, ok := groups[s.File]
		if !ok {
			g = &group{format: s.Format}
			groups[s.File] = g
			order = append(order, s.File)
		}
		if g.format != s.Format {
			return nil, fmt.Errorf("%w: file %s mixes formats", ErrMalformed, s.File)
		}
		g.signals = append(g.signals, i)
	}
	checks := make([]SignalCheck, len(h.Signals))
	for _, name := range order {
		g := groups[name]
		data, ok := files[name]
		if !ok {
			return nil, fmt.Errorf("wfdb: signal file %s missing", name)
		}
		sig, err := DecodeSamples(g.format, len(g.signals), data)
		if err != nil {
			return nil, fmt.Errorf("wfdb: %s: %w", name, err)
		}
		for j, si := range g.signals {
			spec := h.Signals[si]
			samples := sig[j]
			if h.NumSamples > 0 {
				if int64(len(samples)) < h.NumSamples {
					return nil, fmt.Errorf("wfdb: %s signal %d: %d samples, header says %d", name, si, len(samples), h.NumSamples)
				}
				samples = samples[:h.NumSamples]
			}
			checks[si] = SignalCheck{Description: spec.Description, Samples: len(samples), Want: spec.Checksum, Got: Checksum(samples)}
			if len(samples) > 0 && int(samples[0]) != spec.InitValue {
				return checks, fmt.Errorf("wfdb: %s signal %d: initial value %d, header says %d", name, si, samples[0], spec.InitValue)
			}
			if spec.HasChecksum && checks[si].Got != spec.Checksum {
				return checks, fmt.Errorf("wfdb: %s signal %d: checksum %d, header says %d", name, si, checks[si].Got, spec.Checksum)
			}
		}
	}
	return checks, nil
}

// Encode212 packs interleaved samples (each in [-2048, 2047]) in format 212.
func Encode212(flat []int16) []byte {
	out := make([]byte, 0, (len(flat)+1)/2*3)
	for i := 0; i < len(flat); i += 2 {
		s0 := uint16(flat[i]) & 0x0fff
		var s1 uint16
		if i+1 < len(flat) {
			s1 = uint16(flat[i+1]) & 0x0fff
		}
		out = append(out, byte(s0), byte(s0>>8)|byte(s1>>8)<<4, byte(s1))
	}
	if len(flat)%2 == 1 {
		out = out[:len(out)-1]
	}
	return out
}
