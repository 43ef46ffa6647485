package upload

import "errors"

// Sentinel errors. Check them with errors.Is; the client maps gRPC status
// codes back to them, so callers never need grpc/status.
var (
	// ErrMalformed reports input that does not decode or violates a limit.
	// Do not retry: the same input fails again.
	ErrMalformed = errors.New("upload: malformed input")
	// ErrStaleKey reports a handshake under a key epoch the server no longer
	// holds. Fetch the current public key and start the upload again.
	ErrStaleKey = errors.New("upload: stale key epoch")
	// ErrRejected reports an upload request whose credential, time or nonce
	// failed the server's checks. The server has rotated its key pair; a
	// client with a valid credential and clock may start again.
	ErrRejected = errors.New("upload: request rejected")
	// ErrForged reports an unknown client or a wrong credential. It wraps
	// ErrRejected on the server side.
	ErrForged = errors.New("upload: forged credential")
	// ErrExpired reports a request time outside the validity window, or a
	// credential past its expiry date. It wraps ErrRejected on the server
	// side.
	ErrExpired = errors.New("upload: request or credential expired")
	// ErrReplay reports a request nonce seen before. It wraps ErrRejected on
	// the server side.
	ErrReplay = errors.New("upload: replayed request")
	// ErrDecrypt reports a ciphertext that failed authentication.
	ErrDecrypt = errors.New("upload: authentication failed")
	// ErrBadChunk reports a chunk that is out of range, duplicated, of the
	// wrong size or fails authentication. The chunk is dropped; the job stays
	// open and the client may resend the chunk the server reports missing.
	ErrBadChunk = errors.New("upload: bad chunk")
	// ErrIncomplete reports a transfer that ended with chunks missing.
	// Resume the job.
	ErrIncomplete = errors.New("upload: chunks missing")
	// ErrDigest reports a recording whose end-to-end digest did not match
	// after decryption. The job has failed; upload again.
	ErrDigest = errors.New("upload: digest mismatch")
	// ErrUnknownJob reports a job id the server does not know (never issued,
	// expired or finished).
	ErrUnknownJob = errors.New("upload: unknown job")
	// ErrPreempted reports a transfer stopped to give its slot to a more
	// urgent job. The job was re-queued with a raised priority; resume it.
	ErrPreempted = errors.New("upload: transfer preempted")
	// ErrBusy reports that the server is out of a resource (spool space,
	// replay cache). Retry later with backoff.
	ErrBusy = errors.New("upload: server busy")
	// ErrExists reports a recording already stored under the same name.
	ErrExists = errors.New("upload: recording already stored")
	// ErrInternal reports a server-side failure whose details are only in the
	// server log.
	ErrInternal = errors.New("upload: internal server error")
)
