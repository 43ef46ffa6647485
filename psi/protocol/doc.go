// Package protocol is mpsi's session protocol as state machines without
// I/O: the one place where the rounds, their order, the checks on every
// message and the dropout policy are written.
//
// A session has one [Coordinator] machine (at the coordinator) and one
// [Party] machine per hospital. Drivers feed them messages and carry out
// the [Event]s they emit: [Send] a message, [RoundEntered], [Audit],
// [Released], [Aborted]. Three drivers exist: [RunLocal] (every machine in
// one process, messages through the codec in memory), the coordinator's
// gRPC server (package coordinator) and the hospital's gRPC client (package
// party). They only carry messages: adding a matching or aggregation mode
// means changing this package, its codec and doc/PROTOCOL.md.
//
// Messages ([Hello], [Welcome], [Ready], [Roster], [Envelope], [Batch],
// [MaskDeal], [Share], [MheChunk], [Abort], [Result]) carry a [Header]
// naming the session and the sender. [Encode] and [Decode] are their one
// canonical binary codec; Decode checks every length against its limit and
// the bytes present before allocating, and every enum against its range.
// The receiving machine then checks the header against what it knows (the
// session it runs, the party whose authenticated stream it came on) and the
// body against the round, the declared sizes and the roster, and aborts
// with a [Code] and a reason naming the check when one fails.
//
// A party's secrets live in its [Holder] (records in a secret shuffled
// order, its dh scalar, keyed-mode contribution, mask seeds) and, with
// aggregation encrypted, its [EncryptedHolder] (its secret-key share); the
// coordinator's per-session state without messages is the [Engine] (sizes,
// tokens, join, masks, shares, release) and [Encrypted] (keys, ciphertexts,
// key switch). None of them is ever encoded: only messages cross the wire.
//
// The package imports no transport, network, store or metrics package
// (internal/layering's test enforces it).
package protocol
