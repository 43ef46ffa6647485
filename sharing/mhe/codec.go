package mhe

import (
	"encoding/binary"
	"fmt"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/ring"
	"github.com/tuneinsight/lattigo/v5/ring/ringqp"
)

// Wire format. Every message is
//
//	version (1 byte, = 1) ‖ type (1 byte) ‖ session (32 bytes) ‖ from (uint16)
//	‖ fixed fields (message-specific, big-endian) ‖ polynomials
//
// where each polynomial is written residue by residue (q_0, q_1, …, then
// p_0, …), each residue as N little-endian uint64 coefficients in [0, q_i).
// The total length is fully determined by the parameters and the message
// type, so a decoder checks the exact length first and then every
// coefficient's range, and fills preallocated lattigo structures. Lattigo's
// own deserializers are never called on received bytes: they can crash the
// process on truncated input and accept out-of-range coefficients and
// trailing bytes (notes/lattigo.md §4.2). The encoding is canonical: one
// value has exactly one encoding.

const (
	wireVersion = 1
	headerSize  = 2 + SessionIDSize + 2
)

// Message types.
const (
	typeCKGShare byte = 1 + iota
	typePublicKey
	typeGaloisShares
	typeThresholdShare
	typeCiphertext
	typePCKSRequest
	typeRecipientKey
	typePCKSShare
	typeResult
)

// rows is one polynomial residue table with the moduli of its rows.
type rows struct {
	coeffs [][]uint64
	moduli []uint64
}

func polyRows(p ring.Poly, moduli []uint64) rows { return rows{p.Coeffs, moduli} }

func qpRows(p ringqp.Poly, params *Params) []rows {
	bp := params.bgv
	return []rows{polyRows(p.Q, bp.Q()), polyRows(p.P, bp.P())}
}

func vectorQPRows(v rlwe.VectorQP, params *Params) []rows {
	var out []rows
	for _, p := range v {
		out = append(out, qpRows(p, params)...)
	}
	return out
}

// size returns the encoded size of the residue tables.
func polysSize(ps []rows, n int) int {
	s := 0
	for _, p := range ps {
		s += len(p.moduli) * n * 8
	}
	return s
}

// checkShape verifies that every table has one row per modulus of n
// coefficients, so that marshalling and unmarshalling cannot index out of
// range whatever the caller stored in a message.
func checkShape(ps []rows, n int) error {
	for _, p := range ps {
		if len(p.coeffs) != len(p.moduli) {
			return fmt.Errorf("%w: polynomial has %d residues, want %d", ErrInvalidArgument, len(p.coeffs), len(p.moduli))
		}
		for _, r := range p.coeffs {
			if len(r) != n {
				return fmt.Errorf("%w: residue has %d coefficients, want %d", ErrInvalidArgument, len(r), n)
			}
		}
	}
	return nil
}

// marshalMsg encodes a message. fixed holds the message-specific fields.
func marshalMsg(params *Params, typ byte, s SessionID, from PartyID, fixed []byte, ps []rows) ([]byte, error) {
	if params == nil {
		return nil, fmt.Errorf("%w: message has no parameters (allocate it with Params)", ErrInvalidArgument)
	}
	n := params.N()
	if err := checkShape(ps, n); err != nil {
		return nil, err
	}
	out := make([]byte, 0, headerSize+len(fixed)+polysSize(ps, n))
	out = append(out, wireVersion, typ)
	out = append(out, s[:]...)
	out = binary.BigEndian.AppendUint16(out, uint16(from))
	out = append(out, fixed...)
	for _, p := range ps {
		for i, r := range p.coeffs {
			q := p.moduli[i]
			for _, c := range r {
				if c >= q {
					return nil, fmt.Errorf("%w: coefficient not reduced modulo q_%d", ErrInvalidArgument, i)
				}
				out = binary.LittleEndian.AppendUint64(out, c)
			}
		}
	}
	return out, nil
}

// unmarshalMsg checks the exact length, version and type of b, then decodes
// the header, returns the fixedLen bytes of fixed fields, and fills the
// preallocated tables ps with range-checked coefficients. On error the
// tables may be partially overwritten.
func unmarshalMsg(params *Params, b []byte, typ byte, fixedLen int, ps []rows) (s SessionID, from PartyID, fixed []byte, err error) {
	if params == nil {
		return s, 0, nil, fmt.Errorf("%w: message has no parameters (allocate it with Params)", ErrInvalidArgument)
	}
	n := params.N()
	if err := checkShape(ps, n); err != nil {
		return s, 0, nil, err
	}
	want := headerSize + fixedLen + polysSize(ps, n)
	if len(b) != want {
		return s, 0, nil, fmt.Errorf("%w: length %d, want %d", ErrMalformedMessage, len(b), want)
	}
	if b[0] != wireVersion {
		return s, 0, nil, fmt.Errorf("%w: version %d, want %d", ErrMalformedMessage, b[0], wireVersion)
	}
	if b[1] != typ {
		return s, 0, nil, fmt.Errorf("%w: message type %d, want %d", ErrMalformedMessage, b[1], typ)
	}
	copy(s[:], b[2:2+SessionIDSize])
	from = PartyID(binary.BigEndian.Uint16(b[2+SessionIDSize:]))
	if int(from) >= params.Parties() {
		return s, 0, nil, fmt.Errorf("%w: sender %d, want < %d", ErrMalformedMessage, from, params.Parties())
	}
	fixed = b[headerSize : headerSize+fixedLen]
	off := headerSize + fixedLen
	for _, p := range ps {
		for i, r := range p.coeffs {
			q := p.moduli[i]
			src := b[off : off+8*n]
			for j := range r {
				c := binary.LittleEndian.Uint64(src[8*j:])
				if c >= q {
					return s, 0, nil, fmt.Errorf("%w: coefficient %d of residue %d is not below its modulus", ErrMalformedMessage, j, i)
				}
				r[j] = c
			}
			off += 8 * n
		}
	}
	return s, from, fixed, nil
}
