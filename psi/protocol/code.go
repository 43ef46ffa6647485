package protocol

import "fmt"

// Code classifies why a session was aborted. It travels in [Abort]
// messages and labels metrics, so that an operator can tell a failed check
// from a vanished party without reading (or publishing) a free-text reason.
type Code uint8

// Abort codes (wire constants).
const (
	// CodeUnspecified: no code given (an old or foreign sender).
	CodeUnspecified Code = 0
	// CodePartyAborted: a party sent Abort for a reason of its own.
	CodePartyAborted Code = 1
	// CodeBadMessage: a message was malformed or inconsistent with the
	// session (sizes, senders, lengths).
	CodeBadMessage Code = 2
	// CodeWrongRound: a message came in a round where it is not expected,
	// or a second time.
	CodeWrongRound Code = 3
	// CodeDisconnected: a party's stream ended before the session did.
	CodeDisconnected Code = 4
	// CodeTimeout: a round made no progress within the deadline.
	CodeTimeout Code = 5
	// CodeShutdown: the coordinator shut down or restarted.
	CodeShutdown Code = 6
	// CodeInternal: the coordinator failed internally (store, signing).
	CodeInternal Code = 7
	// CodeRoster: a party found the roster, the spec or a signature
	// inconsistent with what it knows.
	CodeRoster Code = 8
	// CodePolicy: a party's local policy refused the spec.
	CodePolicy Code = 9
	// CodeInput: a party could not load its records.
	CodeInput Code = 10
	// CodeTooFewParties: fewer parties remain than the session needs.
	CodeTooFewParties Code = 11
	// CodeCrypto: a cryptographic check failed (an envelope that does not
	// open, an invalid point, a bad encrypted-aggregation message).
	CodeCrypto Code = 12

	maxCode = CodeCrypto
)

var codeNames = [...]string{
	CodeUnspecified: "unspecified", CodePartyAborted: "party_aborted", CodeBadMessage: "bad_message",
	CodeWrongRound: "wrong_round", CodeDisconnected: "disconnected", CodeTimeout: "timeout",
	CodeShutdown: "shutdown", CodeInternal: "internal", CodeRoster: "roster", CodePolicy: "policy",
	CodeInput: "input", CodeTooFewParties: "too_few_parties", CodeCrypto: "crypto",
}

// String is the code's name, a metric label value.
func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("code_%d", uint8(c))
}
