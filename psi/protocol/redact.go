package protocol

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/mpsi-dev/mpsi/internal/envelope"
	"github.com/mpsi-dev/mpsi/psi"
	"github.com/mpsi-dev/mpsi/psi/ident"
	"github.com/mpsi-dev/mpsi/psi/session"
	"github.com/mpsi-dev/mpsi/sharing/mhe"
)

// RecordError is an error about one of a party's own records (a value that
// cannot contribute, say). Its text names the record and quotes the value,
// so it stays on the party's own terminal and log: what leaves the party is
// [Redact]'s public reason, which carries only the code, the aggregate and
// field names from the spec, and Ref.
type RecordError struct {
	// Record is the record's record_id (a value of the party's file).
	Record string
	// Ref is a random reference that appears both in this error's text and
	// in the public reason, so that the hospital can find the detail in its
	// own log from what the others saw.
	Ref string
	// Err is the detail ([session.ErrValue] with the value).
	Err error
}

// Error is the local, detailed text (record id, value, reference).
func (e *RecordError) Error() string {
	return fmt.Sprintf("protocol: record %s: %v (ref %s)", e.Record, e.Err, e.Ref)
}

// Unwrap returns the detail.
func (e *RecordError) Unwrap() error { return e.Err }

// newRecordError wraps err about record id with a fresh reference.
func newRecordError(id string, err error) *RecordError {
	return &RecordError{Record: id, Ref: newRef(), Err: err}
}

// newRef draws a 64-bit random reference, in hex. The reference is random
// rather than derived from the error, which would let anyone who sees it
// test guesses of the value.
func newRef() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// RedactedError is a party's error split in two: the detailed error, kept
// locally (its Error names records, lines, values), and the public reason
// that goes into the [Abort] the coordinator stores and relays. Its Error
// is the detail followed by the reference; errors.Is and errors.As see the
// detail.
type RedactedError struct {
	// Code is the abort code.
	Code Code
	// Ref is the random reference shared by Public and Error; "" when
	// Public is the full text (a check on an incoming message).
	Ref string
	// Public is the reason that may leave the party.
	Public string
	// Err is the detailed error, which stays with the party.
	Err error
}

// Error is the local text: the detail and, when redacted, the reference.
func (e *RedactedError) Error() string {
	if e.Ref == "" || errors.As(e.Err, new(*RecordError)) {
		return e.Err.Error() // a RecordError names its reference itself
	}
	return fmt.Sprintf("%v (ref %s)", e.Err, e.Ref)
}

// Unwrap returns the detail.
func (e *RedactedError) Unwrap() error { return e.Err }

// publicErrors are the sentinels of the machines' own checks on messages
// from the coordinator and other parties: their text describes the
// message (sizes, rounds, senders, signatures), never one of the party's
// records, so it may leave the party.
var publicErrors = []error{
	ErrBadMessage, ErrWrongRound, ErrStateConsumed, ErrPositions, ErrMalformed, ErrChunk, ErrSessionOver,
	envelope.ErrRoster, envelope.ErrEnvelope, psi.ErrInvalidPoint, psi.ErrContributions,
	mhe.ErrMalformedMessage, session.ErrInvalidSpec, context.Canceled, context.DeadlineExceeded,
}

// recordErrors are sentinels whose text may quote a record's value.
var recordErrors = []error{
	session.ErrValue, ident.ErrBadDate, ident.ErrBadSex, ident.ErrEmpty, ident.ErrInvalidUTF8,
}

// Redact splits err, which made party from abort with code (use
// [CodeOf] when the caller has none), into what stays local and what may
// leave: the public reason is err's text only for the machines' own checks
// on incoming messages (see publicErrors) that quote no record; any error
// about a record, or of unknown origin, is replaced by its code, the names
// of the spec's aggregate and field when known, and a random reference that
// the local text repeats. A nil err gives nil.
func Redact(code Code, party string, err error) *RedactedError {
	if err == nil {
		return nil
	}
	var re *RedactedError
	if errors.As(err, &re) {
		return re
	}
	if code == CodeUnspecified {
		code = CodeOf(err)
		if code == CodeInternal && mayQuoteRecord(err) {
			code = CodeInput
		}
	}
	if !mayQuoteRecord(err) {
		for _, pub := range publicErrors {
			if errors.Is(err, pub) {
				return &RedactedError{Code: code, Public: err.Error(), Err: err}
			}
		}
	}
	r := &RedactedError{Code: code, Err: err}
	var rec *RecordError
	if errors.As(err, &rec) {
		r.Ref = rec.Ref
	} else {
		r.Ref = newRef()
	}
	what := code.String() + " error"
	var ve *session.ValueError
	switch {
	case errors.As(err, &ve):
		what = fmt.Sprintf("a record value could not be used for aggregate %q (field %q)", ve.Aggregate, ve.Field)
	case mayQuoteRecord(err):
		what = "a record value could not be used"
	}
	r.Public = fmt.Sprintf("%s: %s; the details are in %s's own log, ref %s", party, what, party, r.Ref)
	return r
}

func mayQuoteRecord(err error) bool {
	if errors.As(err, new(*RecordError)) {
		return true
	}
	for _, s := range recordErrors {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
