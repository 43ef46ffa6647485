package protocol

import "errors"

// Sentinel errors. Check them with errors.Is.
var (
	// ErrMalformed reports input that does not decode canonically or whose
	// fields do not fit its type. Do not retry the same input.
	ErrMalformed = errors.New("protocol: malformed message")
	// ErrBadSignature reports a missing, forged or mismatched signature.
	ErrBadSignature = errors.New("protocol: bad signature")
	// ErrStale reports a timestamp outside the validity window. Retry with a
	// fresh request if the clocks agree.
	ErrStale = errors.New("protocol: timestamp outside validity window")
	// ErrReplay reports a nonce that was already accepted.
	ErrReplay = errors.New("protocol: replayed nonce")
	// ErrBusy reports a full nonce cache; retry after the validity window.
	ErrBusy = errors.New("protocol: replay cache full")
	// ErrMismatch reports a response that does not answer the request sent.
	ErrMismatch = errors.New("protocol: response does not match request")
)

// Outcomes of the access checks, shared by the access layer and the
// contract so that they survive the trip back to the app.
var (
	// ErrForbidden reports a requester without the right to act: not the
	// owner, not an authorised doctor, or authorising a non-doctor.
	ErrForbidden = errors.New("protocol: not permitted")
	// ErrNotRegistered reports an unknown requester or doctor key.
	ErrNotRegistered = errors.New("protocol: key not registered")
	// ErrNotFound reports an unknown record.
	ErrNotFound = errors.New("protocol: record not found")
	// ErrExists reports a record id or key that is already taken.
	ErrExists = errors.New("protocol: already exists")
	// ErrSourceAddress reports a request from a source address the access
	// layer does not accept.
	ErrSourceAddress = errors.New("protocol: source address not allowed")
	// ErrNoSession reports an unknown or expired session; open a new one.
	ErrNoSession = errors.New("protocol: unknown or expired session")
)

// Outcomes of the registration and key-replacement checks.
var (
	// ErrNotApproved reports a registration whose approval is missing or
	// not signed by the registration authority.
	ErrNotApproved = errors.New("protocol: registration not approved by the registration authority")
	// ErrRetired reports a request signed with a key its holder has
	// replaced. Sign with the new key.
	ErrRetired = errors.New("protocol: key replaced")
)
