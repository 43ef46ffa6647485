// Package coordinator runs the coordinator's side of an mpsi session: it
// routes the dh ring (or collects keyed tokens), joins the token lists,
// deals zero-sum masks, sums the masked shares and releases the Result.
//
// [Engine] is the per-session state machine without I/O; the in-process
// runner ([github.com/mpsi-dev/mpsi/party.RunLocal]) and the gRPC service
// drive the same Engine.
//
// In the encrypted aggregation mode ([Engine.StartEncrypted], in process
// only for now) the coordinator aggregates the parties' key shares, multiplies
// their ciphertexts by each party's 0/1 intersection indicator, sums them and
// asks t parties to switch the total to the recipient's key; it never holds a
// secret-key share. The gRPC service refuses encrypted specs until the mode
// is carried over the network.
//
// # Security model
//
// The coordinator holds no records and no identifiers. It sees token lists
// (pseudorandom), the set sizes, the intersection and the pairwise overlaps
// (it computes them), each party's masked share z_i (uniform unless every
// other party colludes with it), and the released Result.
package coordinator
