package protocol

// Aggregation-encrypted messages (package sharing/mhe) travel as
// [MheChunk]s small enough for one transport message, and are reassembled
// on the other side with every length fixed in advance by the session's
// parameters, so that a peer cannot make the receiver allocate more than the
// largest legitimate message or interleave two messages. The bytes
// reassembled are still untrusted: they are decoded with the sharing/mhe
// message types, which check every field before lattigo sees anything.

import (
	"errors"
	"fmt"

	"github.com/mpsi-dev/mpsi/sharing/mhe"
)

// ErrChunk reports a chunk that does not continue a message as announced:
// unknown or unexpected kind, wrong total, out-of-order offset, empty or
// oversized data, or a new message before the previous one is complete.
var ErrChunk = errors.New("protocol: malformed encrypted-aggregation chunk")

// Sizes maps each message kind to its encoded length under one session's
// parameters.
type Sizes map[MheKind]int

// SizesOf returns the encoded length of every message kind under params,
// by encoding freshly allocated messages (every encoding has a length fixed
// by the parameters).
func SizesOf(p *mhe.Params) (Sizes, error) {
	type marshaler interface{ MarshalBinary() ([]byte, error) }
	req := p.NewPCKSRequestMsg()
	for i := range req.Active {
		req.Active[i] = mhe.PartyID(i) // the encoding checks the set's shape
	}
	ms := map[MheKind]marshaler{
		MheCKGShare:     p.NewCKGShareMsg(),
		MheGaloisShares: p.NewGaloisSharesMsg(),
		MhePublicKey:    p.NewPublicKeyMsg(),
		MheCiphertext:   p.NewCiphertextMsg(),
		MheRecipientKey: p.NewRecipientKeyMsg(),
		MhePCKSRequest:  req,
		MhePCKSShare:    p.NewPCKSShareMsg(),
	}
	s := Sizes{}
	for k, m := range ms {
		b, err := m.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("protocol: size of %v: %w", k, err)
		}
		s[k] = len(b)
	}
	return s, nil
}

// Split cuts one encoded message into chunks of at most [ChunkSize] bytes,
// each with header h.
// The chunks alias b.
func Split(h Header, kind MheKind, index uint32, b []byte) []*MheChunk {
	var out []*MheChunk
	for off := 0; off < len(b) || off == 0; off += ChunkSize {
		end := min(off+ChunkSize, len(b))
		out = append(out, &MheChunk{Header: h, Kind: kind, Index: index, Offset: uint64(off), Total: uint64(len(b)), Data: b[off:end]})
		if end == len(b) {
			break
		}
	}
	return out
}

// Assembler reassembles the messages of one sender, one at a time. It is
// not safe for concurrent use.
type Assembler struct {
	sizes  Sizes
	accept func(kind MheKind, index uint32) error
	kind   MheKind
	index  uint32
	buf    []byte // the message in progress; nil between messages
}

// NewAssembler returns an assembler for messages of the kinds in sizes.
// accept is asked about the first chunk of every message and may refuse it
// (a kind this side never receives, an index out of range, a round not
// open yet); its error is returned wrapped in [ErrChunk].
func NewAssembler(sizes Sizes, accept func(kind MheKind, index uint32) error) *Assembler {
	return &Assembler{sizes: sizes, accept: accept}
}

// Add takes the next chunk. When it completes a message, Add returns the
// message's bytes (which the caller owns) and done = true. Any error leaves
// the assembler unusable for the message in progress: the caller should end
// the session.
func (a *Assembler) Add(c *MheChunk) (msg []byte, done bool, err error) {
	size, ok := a.sizes[c.Kind]
	switch {
	case !ok:
		return nil, false, fmt.Errorf("%w: kind %v", ErrChunk, c.Kind)
	case c.Total != uint64(size):
		return nil, false, fmt.Errorf("%w: %v of %d bytes, want %d", ErrChunk, c.Kind, c.Total, size)
	case len(c.Data) == 0 || len(c.Data) > ChunkSize:
		return nil, false, fmt.Errorf("%w: %v chunk of %d bytes", ErrChunk, c.Kind, len(c.Data))
	}
	if a.buf == nil {
		if c.Offset != 0 {
			return nil, false, fmt.Errorf("%w: %v %d starts at offset %d", ErrChunk, c.Kind, c.Index, c.Offset)
		}
		if a.accept != nil {
			if err := a.accept(c.Kind, c.Index); err != nil {
				return nil, false, fmt.Errorf("%w: %w", ErrChunk, err)
			}
		}
		a.kind, a.index, a.buf = c.Kind, c.Index, make([]byte, 0, size)
	} else if c.Kind != a.kind || c.Index != a.index || c.Offset != uint64(len(a.buf)) {
		return nil, false, fmt.Errorf("%w: %v %d at offset %d while %v %d is at %d", ErrChunk, c.Kind, c.Index, c.Offset, a.kind, a.index, len(a.buf))
	}
	if len(a.buf)+len(c.Data) > size {
		return nil, false, fmt.Errorf("%w: %v %d overruns its %d bytes", ErrChunk, a.kind, a.index, size)
	}
	a.buf = append(a.buf, c.Data...)
	if len(a.buf) < size {
		return nil, false, nil
	}
	msg, a.buf = a.buf, nil
	return msg, true, nil
}

// Pending reports whether a message is partly received.
func (a *Assembler) Pending() bool { return a.buf != nil }
