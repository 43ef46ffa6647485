// Package coordinator runs the coordinator's side of an mpsi session: it
// routes the dh ring (or collects keyed tokens), joins the token lists,
// deals zero-sum masks, sums the masked shares and releases the Result.
//
// [Engine] is the per-session state machine without I/O; the in-process
// runner ([github.com/mpsi-dev/mpsi/party.RunLocal]) and the gRPC service
// drive the same Engine.
//
// # Security model
//
// The coordinator holds no records and no identifiers. It sees token lists
// (pseudorandom), the set sizes, the intersection and the pairwise overlaps
// (it computes them), each party's masked share z_i (uniform unless every
// other party colludes with it), and the released Result.
package coordinator
