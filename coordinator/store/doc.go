// Package store is the coordinator's embedded database: an SQLite file
// (pure-Go driver modernc.org/sqlite, file mpsi.db by default) holding
//
//   - sessions: the session specification as submitted (public parameters),
//     its state (created, running, completed, aborted) and the abort reason;
//   - results: the released result of each completed session and the
//     coordinator's signature over it;
//   - audit: an append-only, hash-chained log of what happened (session
//     created, started, released or aborted, parties joined, ...), plus a
//     one-row chain head (last sequence number and hash).
//
// # What is not stored
//
// Nothing secret goes into the store. The coordinator never holds a party's
// records, identifiers, keys, shares or PRF outputs, and callers must not put
// any of them into a spec, a result, an audit actor or an audit detail. Audit
// events refer to specs and results by their SHA-256 only. Signing keys live
// elsewhere; the store keeps signatures, which are public.
//
// # Audit chain
//
// Event seq (1, 2, 3, ...) carries
//
//	hash = SHA-256(enc(label) || uint64(seq) || enc(time) || enc(kind) ||
//	               enc(session) || enc(actor) || enc(detail) || enc(prev))
//
// where enc(x) is the 8-byte big-endian length of x followed by x, label is
// "mpsi/v1/coordinator/audit-event", time is RFC 3339 with nanoseconds in UTC
// and prev is the hash of event seq-1 (32 zero bytes for the first event).
// Each append updates the chain head in the same transaction, so
// [Store.VerifyAudit] detects altered, reordered, inserted and removed
// events, including removed trailing ones. SQLite triggers refuse UPDATE and
// DELETE on the log as well.
//
// # History
//
// The sessions, results, audit and chain-head tables hold history, and
// triggers (schema version 2) keep plain SQL on the file from losing it: no
// DELETE on any of them; a session's id, spec and creation time never change
// and its state only moves forward (created → running | aborted, running →
// completed | aborted), with a reason only when it is aborted; a result is
// inserted once, for a completed session; INSERT OR REPLACE (which deletes
// without firing delete triggers) cannot replace any of these rows.
// [Store.VerifyAudit] also checks the tables against the chain: every
// session has exactly the events its state implies, with its spec's and its
// result's digests and its abort reason, and every session event names a
// session that exists — so dropping the triggers first is detected too.
//
// The chain is unkeyed: someone who can write the file and recompute every
// hash, including the head, can rewrite history undetected. To detect that,
// publish or sign [Store.Head] somewhere outside the database from time to
// time and compare.
//
// # Durability
//
// The database runs in WAL mode with synchronous=FULL and foreign keys on.
// Every change that touches more than one row (a state transition and its
// audit event, a result and its audit event) is a single transaction, so a
// crash never leaves a result released without its audit event or a session
// half-updated. After a restart the coordinator calls
// [Store.AbortInterrupted] to abort sessions that were still in progress.
package store
