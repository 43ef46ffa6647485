// Package ledger is the record-sharing contract's ledger: an append-only,
// hash-chained log of entries persisted in SQLite (modernc.org/sqlite, pure
// Go), with a signed checkpoint of its size and head.
//
// Entry n has hash
//
//	H_n = SHA-256(frame(label, n, kind, H_{n-1}, payload))
//
// where H_0 is a genesis hash bound to the contract's public key. After every
// append the contract signs (size, head) with its Ed25519 key. [Verify]
// recomputes the chain from the stored rows and the checkpoint signature, so
// that it finds any altered entry (its hash no longer matches), any reordered
// or removed entry (a link or sequence number breaks) and entries removed at
// the end (the signed checkpoint no longer matches). It cannot detect a
// rollback of the whole file to an older copy with its older checkpoint; pin
// the expected size and head (for example from the answers the contract
// signed) to catch that.
//
// SQLite triggers refuse UPDATE and DELETE on entries, which stops mistakes,
// not an attacker with the file; Verify is what catches the latter.
//
// A Ledger is safe for concurrent use.
package ledger
