// Package upload implements encrypted ECG upload after the seed document
// CN 108737334 A ("ECG detection data upload system and method"): a server
// publishes an X25519 public key per key epoch; a client derives the
// symmetric suite from a hash of that key, seals a fresh data key to it with
// HPKE (RFC 9180, github.com/cloudflare/circl/hpke), sends an upload request
// sealed under the data key that carries its credential and the current
// time, and then uploads the sealed recording: in one unary call when it is
// small ("web service" mode) or in sealed chunks over a stream ("socket"
// mode), resumable, scheduled by a pool resized from the measured load with
// a priority queue (urgency from the client credential's role, then the
// estimated time remaining from the reported link and measured throughput)
// that may preempt low-priority transfers. Jobs, their sealed chunks, the
// key epoch and the replay cache are kept in a SQLite state database, so a
// restarted server resumes unfinished jobs and still refuses replays.
//
// # Message flow
//
//	Client                                          Server
//	  |  PublicKey() -------------------------------> |  key pair per epoch
//	  |  <------------------------- epoch, pk (X25519) |
//	  |  suite = SelectSuite(pk)                      |
//	  |  enc, sealedKey = HPKE.Seal(pk, dataKey)      |
//	  |  sealedReq = AEAD(dataKey, request)           |  request: client id,
//	  |                                               |  credential, time,
//	  |                                               |  job id (nonce),
//	  |                                               |  files, digests
//	  |  Put(handshake, AEAD(dataKey, rec)) --------> |  small: one call
//	  |  Begin(handshake) --------------------------> |  large: open a job
//	  |  Transfer: job id --------------------------> |  queue for a slot
//	  |  <------------------------- Grant(missing)    |
//	  |  chunk i = AEAD(dataKey, part i,              |  authenticated on
//	  |     ad = job id, i, count, size) -----------> |  arrival, kept sealed
//	  |  (half-close) ------------------------------> |  all in: merge,
//	  |  <--------------- Done(receipt) or missing    |  decrypt, digest,
//	  |  Status(job id) after a broken stream ------> |  store atomically
//
// The server checks, in this order: key epoch (stale: ErrStaleKey, fetch
// the new key), HPKE and AEAD authentication, request encoding, credential,
// credential expiry, time within the validity window, and nonce freshness. A failed
// credential, time or nonce check, or an undecryptable handshake, rotates
// the key pair (seed document [0077]): clients must fetch the new key and
// start again.
//
// # Security model
//
// Transport is gRPC over mutual TLS 1.3. The application layer adds
// end-to-end sealing so that recordings stay encrypted through any proxy and
// in the server's spool until the job is complete. Secret values: the
// epoch private key (never leaves the Server), the data key (in the AEAD
// objects of the Client's job and the server's job, and sealed under the
// state key in the state database until the job ends), the credential (sealed on the wire, kept on the server only as a
// SHA-256 digest, compared with hmac.Equal) and the recording itself.
// Nothing secret is logged or put in an error.
//
// The suite choice (SelectSuite) carries no security weight: it is a public
// function of a public key, both suites are IND-CCA2 AEADs with 256-bit
// keys, and both ends derive it independently, so an attacker can neither
// hide nor steer it. It exists to mirror claim 3 of the seed document.
//
// Accepted leakage: sizes of recordings and chunks, record and file names
// (in the manifest, not on the wire), timing, urgency. Rotating the key on
// every failed check means a client with a valid TLS certificate can force
// rotations (a nuisance, not a confidentiality loss); clients recover by
// fetching the new key.
//
// # Constant time
//
// Credential and digest comparisons use crypto/hmac and crypto/subtle.
// Request decoding and scheduling branch on public metadata only.
package upload
