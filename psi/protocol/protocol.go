package protocol

import (
	"context"
	"errors"
	"fmt"

	"github.com/mpsi-dev/mpsi/internal/envelope"
	"github.com/mpsi-dev/mpsi/psi"
	"github.com/mpsi-dev/mpsi/psi/session"
	"github.com/mpsi-dev/mpsi/sharing/mhe"
)

// Sentinel errors of the state machines. Transports map them to status
// codes and [CodeOf] maps them to abort codes.
var (
	// ErrWrongRound reports a message that arrives in a round where it is not
	// expected, or a second time (a replay).
	ErrWrongRound = errors.New("protocol: message not expected in this round")
	// ErrBadMessage reports a message whose content is inconsistent with the
	// session (wrong length, unknown party, size over max_set_size, a
	// header naming another session or sender).
	ErrBadMessage = errors.New("protocol: message inconsistent with the session")
	// ErrAborted reports a session that ended without a Result; the error
	// is an [*AbortError] with its code and reason.
	ErrAborted = errors.New("protocol: session aborted")
	// ErrSessionOver reports input to a machine whose session has ended.
	ErrSessionOver = errors.New("protocol: session is over")
	// ErrStateConsumed reports a round run twice on the same party state
	// (for example because a message was replayed).
	ErrStateConsumed = errors.New("protocol: round already run")
	// ErrRingAuth reports a ring batch that the previous party did not make
	// for this place in its list: made, altered, replayed, reordered or
	// re-addressed by whoever relayed it.
	ErrRingAuth = errors.New("protocol: ring batch not authenticated")
	// ErrKeySwitch reports a key-switch request a party refuses: nothing is
	// to be released, another ciphertext than the first request's, or a
	// re-request that does not answer a dropout.
	ErrKeySwitch = errors.New("protocol: key switch refused")
	// ErrPositions reports an intersection position list from the
	// coordinator that is not sorted, repeats, or points past the party's
	// set.
	ErrPositions = errors.New("protocol: invalid positions")
	// ErrNoSpill reports a join that cannot spill to disk: a session with
	// several match keys links them in memory (package psi/link).
	ErrNoSpill = errors.New("protocol: this join cannot spill")
)

// AbortError is a session's abort: who ended it, the code and the reason.
type AbortError struct {
	Code   Code
	Reason string
}

// Error describes the abort.
func (e *AbortError) Error() string {
	return fmt.Sprintf("session aborted (%s): %s", e.Code, e.Reason)
}

// Is makes errors.Is(err, ErrAborted) true.
func (e *AbortError) Is(target error) bool { return target == ErrAborted }

// CodeOf classifies an error for an [Abort].
func CodeOf(err error) Code {
	var ae *AbortError
	switch {
	case err == nil:
		return CodeUnspecified
	case errors.As(err, &ae):
		return ae.Code
	case errors.Is(err, context.Canceled):
		return CodeShutdown
	case errors.Is(err, context.DeadlineExceeded):
		return CodeTimeout
	case errors.Is(err, ErrWrongRound), errors.Is(err, ErrStateConsumed):
		return CodeWrongRound
	case errors.Is(err, envelope.ErrRoster):
		return CodeRoster
	case errors.Is(err, envelope.ErrEnvelope), errors.Is(err, psi.ErrInvalidPoint), errors.Is(err, mhe.ErrMalformedMessage),
		errors.Is(err, ErrRingAuth), errors.Is(err, ErrKeySwitch):
		return CodeCrypto
	case errors.Is(err, ErrBadMessage), errors.Is(err, ErrMalformed), errors.Is(err, ErrChunk),
		errors.Is(err, ErrPositions), errors.Is(err, session.ErrInvalidSpec):
		return CodeBadMessage
	}
	return CodeInternal
}

// Round is a session's stage, as the coordinator sees it. Its String is
// used in logs and as a metric label.
type Round uint8

// Rounds, in the order a session passes them (masked aggregation: setup,
// tokens, join, shares, released; encrypted: setup, tokens, join, keys,
// ciphertexts, key-switch, released).
const (
	// RoundSetup: parties connect and declare their set sizes.
	RoundSetup Round = iota
	// RoundTokens: envelopes, the dh ring or the keyed token lists.
	RoundTokens
	// RoundJoin: the coordinator intersects the token lists.
	RoundJoin
	// RoundShares: masked aggregation, positions and masks dealt, shares
	// awaited.
	RoundShares
	// RoundKeys: encrypted aggregation, key material awaited.
	RoundKeys
	// RoundCiphertexts: encrypted aggregation, ciphertexts awaited.
	RoundCiphertexts
	// RoundKeySwitch: encrypted aggregation, key-switch shares awaited.
	RoundKeySwitch
	// RoundUploads: oblivious aggregation, masked contributions of every
	// record, indicator attestations and unmasking shares awaited.
	RoundUploads
	// RoundReleased: the Result is released.
	RoundReleased
	// RoundAborted: the session ended without a Result.
	RoundAborted
)

var roundNames = [...]string{"setup", "tokens", "join", "shares", "keys", "ciphertexts", "key-switch", "uploads", "released", "aborted"}

// String is the round's name.
func (r Round) String() string {
	if int(r) < len(roundNames) {
		return roundNames[r]
	}
	return fmt.Sprintf("Round(%d)", uint8(r))
}

// Event is what a machine asks its driver to do or to know, in order. The
// concrete types are below.
type Event interface{ event() }

// Send asks the driver to deliver Msg: from the coordinator to party To,
// or from a party to the coordinator (To is -1).
type Send struct {
	To  int
	Msg Message
}

// RoundEntered reports that the session moved to Round.
type RoundEntered struct{ Round Round }

// Audit is a fact for the coordinator's audit log. It never holds record
// values: only names, counts and codes.
type Audit struct {
	Kind   string
	Party  string
	Detail string
}

// Info is an operational note for the log (no secrets, no record values).
type Info struct {
	Msg  string
	Args []any
}

// Released reports the released Result (the coordinator's copy, without
// members), its JSON and the coordinator's signature. The coordinator's
// driver stores it before delivering the Result messages that follow.
type Released struct {
	Result    *session.Result
	JSON      []byte
	Signature []byte
}

// Aborted reports that the session ended without a Result.
type Aborted struct {
	Code   Code
	Reason string
	// Round is where the session was when it aborted.
	Round Round
}

// Disconnect asks the coordinator's driver to stop sending to party Party
// (it vanished and the session goes on without it).
type Disconnect struct{ Party int }

// Progress reports a party's advancing local work.
type Progress struct {
	Phase       string
	Done, Total int
}

// StageReached reports that a party's encrypted aggregation passed a stage
// (StageKeysSent, StagePublicKey, StageCiphertextsSent, StageKeySwitch).
type StageReached struct{ Stage string }

func (Send) event()         {}
func (RoundEntered) event() {}
func (Audit) event()        {}
func (Info) event()         {}
func (Released) event()     {}
func (Aborted) event()      {}
func (Disconnect) event()   {}
func (Progress) event()     {}
func (StageReached) event() {}

// Stages of aggregation encrypted, reported as [StageReached] events.
const (
	// StageKeysSent: the party's key shares (and Shamir shares) are sent.
	StageKeysSent = "keys-sent"
	// StagePublicKey: the collective public key arrived; the party is about
	// to encrypt.
	StagePublicKey = "public-key"
	// StageCiphertextsSent: every ciphertext of the party is sent.
	StageCiphertextsSent = "ciphertexts-sent"
	// StageKeySwitch: a key-switch request naming the party arrived; it is
	// about to answer.
	StageKeySwitch = "key-switch"
)

// Defaults.
const (
	// DefaultCoordinatorName is the coordinator's certificate name when a
	// deployment does not choose another (mpsi dev-certs issues it).
	DefaultCoordinatorName = "coordinator"
	// DefaultMaxBatch is the default limit on the elements of one Batch.
	DefaultMaxBatch = 8192
	// RingWindow is how many batches of its own dh list a party keeps in
	// flight (sent, not yet credited back by the coordinator): it bounds
	// the ring's traffic in the coordinator's queues to n·RingWindow
	// batches per hop without ever holding back a hop.
	RingWindow = 8
	// MaxBatchLimit is the largest batch limit a party accepts.
	MaxBatchLimit = 1 << 16
)

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
