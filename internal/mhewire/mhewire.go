// Package mhewire carries aggregation-encrypted messages (package
// sharing/mhe) over the coordinator protocol: it cuts each encoded message
// into [mpsiv1.MheChunk]s small enough for one gRPC message, and reassembles
// them on the other side with every length fixed in advance by the
// session's parameters, so that a peer cannot make the receiver allocate
// more than the largest legitimate message or interleave two messages.
//
// The bytes it reassembles are still untrusted: decode them with the
// sharing/mhe message types, which check every field before lattigo sees
// anything.
package mhewire

import (
	"errors"
	"fmt"

	mpsiv1 "github.com/mpsi-dev/mpsi/api/mpsi/v1"
	"github.com/mpsi-dev/mpsi/sharing/mhe"
)

// ChunkSize is the largest data field of one chunk (the gRPC message limit
// is 16 MiB on both sides).
const ChunkSize = 4 << 20

// ErrChunk reports a chunk that does not continue a message as announced:
// unknown or unexpected kind, wrong total, out-of-order offset, empty or
// oversized data, or a new message before the previous one is complete.
var ErrChunk = errors.New("mhewire: malformed chunk")

// Sizes maps each message kind to its encoded length under one session's
// parameters.
type Sizes map[mpsiv1.MheKind]int

// SizesOf returns the encoded length of every message kind under params,
// by encoding freshly allocated messages (every encoding has a length fixed
// by the parameters).
func SizesOf(p *mhe.Params) (Sizes, error) {
	type marshaler interface{ MarshalBinary() ([]byte, error) }
	req := p.NewPCKSRequestMsg()
	for i := range req.Active {
		req.Active[i] = mhe.PartyID(i) // the encoding checks the set's shape
	}
	ms := map[mpsiv1.MheKind]marshaler{
		mpsiv1.MheKind_MHE_KIND_CKG_SHARE:     p.NewCKGShareMsg(),
		mpsiv1.MheKind_MHE_KIND_GALOIS_SHARES: p.NewGaloisSharesMsg(),
		mpsiv1.MheKind_MHE_KIND_PUBLIC_KEY:    p.NewPublicKeyMsg(),
		mpsiv1.MheKind_MHE_KIND_CIPHERTEXT:    p.NewCiphertextMsg(),
		mpsiv1.MheKind_MHE_KIND_RECIPIENT_KEY: p.NewRecipientKeyMsg(),
		mpsiv1.MheKind_MHE_KIND_PCKS_REQUEST:  req,
		mpsiv1.MheKind_MHE_KIND_PCKS_SHARE:    p.NewPCKSShareMsg(),
	}
	s := Sizes{}
	for k, m := range ms {
		b, err := m.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("mhewire: size of %v: %w", k, err)
		}
		s[k] = len(b)
	}
	return s, nil
}

// Split cuts one encoded message into chunks of at most [ChunkSize] bytes.
// The chunks alias b.
func Split(kind mpsiv1.MheKind, index uint32, b []byte) []*mpsiv1.MheChunk {
	var out []*mpsiv1.MheChunk
	for off := 0; off < len(b) || off == 0; off += ChunkSize {
		end := min(off+ChunkSize, len(b))
		out = append(out, &mpsiv1.MheChunk{Kind: kind, Index: index, Offset: uint64(off), Total: uint64(len(b)), Data: b[off:end]})
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
	accept func(kind mpsiv1.MheKind, index uint32) error
	kind   mpsiv1.MheKind
	index  uint32
	buf    []byte // the message in progress; nil between messages
}

// NewAssembler returns an assembler for messages of the kinds in sizes.
// accept is asked about the first chunk of every message and may refuse it
// (a kind this side never receives, an index out of range, a round not
// open yet); its error is returned wrapped in [ErrChunk].
func NewAssembler(sizes Sizes, accept func(kind mpsiv1.MheKind, index uint32) error) *Assembler {
	return &Assembler{sizes: sizes, accept: accept}
}

// Add takes the next chunk. When it completes a message, Add returns the
// message's bytes (which the caller owns) and done = true. Any error leaves
// the assembler unusable for the message in progress: the caller should end
// the session.
func (a *Assembler) Add(c *mpsiv1.MheChunk) (msg []byte, done bool, err error) {
	size, ok := a.sizes[c.GetKind()]
	switch {
	case !ok:
		return nil, false, fmt.Errorf("%w: kind %v", ErrChunk, c.GetKind())
	case c.GetTotal() != uint64(size):
		return nil, false, fmt.Errorf("%w: %v of %d bytes, want %d", ErrChunk, c.GetKind(), c.GetTotal(), size)
	case len(c.GetData()) == 0 || len(c.GetData()) > ChunkSize:
		return nil, false, fmt.Errorf("%w: %v chunk of %d bytes", ErrChunk, c.GetKind(), len(c.GetData()))
	}
	if a.buf == nil {
		if c.GetOffset() != 0 {
			return nil, false, fmt.Errorf("%w: %v %d starts at offset %d", ErrChunk, c.GetKind(), c.GetIndex(), c.GetOffset())
		}
		if a.accept != nil {
			if err := a.accept(c.GetKind(), c.GetIndex()); err != nil {
				return nil, false, fmt.Errorf("%w: %w", ErrChunk, err)
			}
		}
		a.kind, a.index, a.buf = c.GetKind(), c.GetIndex(), make([]byte, 0, size)
	} else if c.GetKind() != a.kind || c.GetIndex() != a.index || c.GetOffset() != uint64(len(a.buf)) {
		return nil, false, fmt.Errorf("%w: %v %d at offset %d while %v %d is at %d", ErrChunk, c.GetKind(), c.GetIndex(), c.GetOffset(), a.kind, a.index, len(a.buf))
	}
	if len(a.buf)+len(c.GetData()) > size {
		return nil, false, fmt.Errorf("%w: %v %d overruns its %d bytes", ErrChunk, a.kind, a.index, size)
	}
	a.buf = append(a.buf, c.GetData()...)
	if len(a.buf) < size {
		return nil, false, nil
	}
	msg, a.buf = a.buf, nil
	return msg, true, nil
}

// Pending reports whether a message is partly received.
func (a *Assembler) Pending() bool { return a.buf != nil }
