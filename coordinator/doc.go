// Package coordinator is the coordinator service of mpsi: a gRPC server
// (mutual TLS 1.3) that authenticates every stream by its client
// certificate, attaches it to its session, and carries frames between the
// parties and the session's protocol machine ([protocol.Coordinator]). It
// keeps per-party send queues, deadlines (a round without progress for
// [Config.RoundTimeout] aborts), the SQLite store with its append-only
// audit chain, and Prometheus metrics, all written from the machine's
// events. The rounds themselves, their order and their checks live in
// package psi/protocol, not here.
//
// Each live session has one goroutine owning its machine and a session
// context that [Server.Shutdown] cancels (a join in progress, spilling or
// not, stops). With [Config.JoinBudget] the tokens of a session go to disk
// as they arrive and the join runs one token-prefix partition at a time, in
// bounded memory.
//
// It does not import package party: the service links no hospital code.
//
// # Security model
//
// The coordinator holds no records and no identifiers. It sees token lists
// (pseudorandom), the set sizes, the intersection and the pairwise overlaps
// (it computes them), each party's masked share z_i (uniform unless every
// other party colludes with it), and the released Result.
package coordinator
