// Package coordinator runs the coordinator's side of an mpsi session: it
// routes the dh ring (or collects keyed tokens), joins the token lists,
// deals zero-sum masks, sums the masked shares and releases the Result.
//
// [Engine] is the per-session state machine without I/O; the in-process
// runner ([github.com/mpsi-dev/mpsi/party.RunLocal]) and the gRPC service
// drive the same Engine.
//
// In the encrypted aggregation mode ([Engine.StartEncrypted]; over the
// network the rounds of doc/PROTOCOL.md) the coordinator aggregates the
// parties' key shares, multiplies their ciphertexts by each party's 0/1
// intersection indicator as they arrive, sums them and asks t live parties
// to switch the total to the release key, a key pair of its own unrelated to
// the collective key; it never holds a secret-key share. With a threshold it
// tolerates parties that vanish, per the spec's dropout rule.
//
// With [Config.JoinBudget] the tokens of a session go to disk as they
// arrive and the join runs one token-prefix partition at a time, in bounded
// memory ([Engine.Spill]).
//
// # Security model
//
// The coordinator holds no records and no identifiers. It sees token lists
// (pseudorandom), the set sizes, the intersection and the pairwise overlaps
// (it computes them), each party's masked share z_i (uniform unless every
// other party colludes with it), and the released Result.
package coordinator
