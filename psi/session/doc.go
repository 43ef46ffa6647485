// Package session holds what every participant of an mpsi session agrees on:
// the session [Spec] (parties, logical fields, match fields, mode and dh group, the
// reveal list, the aggregates, min_cell), the [Layout] of the aggregate
// vector in Z_2^64 that parties fill and the coordinator sums, and the
// released [Result].
//
// # Aggregate semantics
//
// Over the patients shared by ALL parties, each party listed in an
// aggregate's `from` (default: all parties) contributes f(its own value) for
// each of its shared records; the release is the sum of contributions. An
// empty cell is no contribution; contributions are counted.
//
//	kind       slots in the vector             released
//	count      1: +1 per shared patient         value (|I|) — contributed once, by the first `from` party;
//	              (with `field`: +1 per          with a field, the number of non-empty values
//	              non-empty value)
//	sum        2: Σv, #contributions            value
//	mean       2: Σv, #contributions            value = Σv / #, contributions
//	variance   3: Σv, Σv², #contributions       value = sample variance (n−1), contributions
//	histogram  len(edges)−1 bin counts          edges, counts; bin k is [edges[k], edges[k+1]), the last bin closed
//	count_if   1: +1 per matching value         value; `equals` compares the normalised value, `contains`
//	                                            looks for a code in a separated code list
//
// Values are fixed-point: a value v with `scale` s is carried as the integer
// v·10^s; a value with more decimals than s, or outside [min, max], is an
// error reported to the party before the protocol starts, never wrapped.
// The spec is refused when the declared bounds could make a slot overflow
// 2^63 with max_set_size records per party.
//
// # Aggregation modes
//
// With "aggregation": "masked" (the default) each party adds up its own
// contributions over its records in the intersection and blinds the sum
// with zero-sum masks ([github.com/mpsi-dev/mpsi/sharing]). With
// "aggregation": "encrypted" (and an optional "threshold": t) the parties
// encrypt the contributions of all their records under a collective BGV key
// and the coordinator selects the intersection homomorphically
// ([github.com/mpsi-dev/mpsi/sharing/mhe]); no party learns which of its
// records are shared, so "membership" is refused, and the spec is refused
// when the declared bounds cannot fit the plaintext modulus. Both modes
// release the same vector through [Layout.Release].
//
// # Suppression
//
// With min_cell = m, any released count c with 0 < c < m is suppressed, and
// so is anything computed from fewer than m contributions. When the
// intersection itself is below m (and not zero), every aggregate and every
// off-diagonal pairwise overlap is suppressed: they are all derived from it.
// A suppressed value is absent and "suppressed": true is present; a
// suppressed histogram bin or pairwise cell is null. The pairwise diagonal
// (each party's de-duplicated set size) is public and never suppressed.
//
// Suppression is complementary, so that no suppressed cell can be
// recomputed from released ones: an off-diagonal pairwise cell P_ij is
// suppressed when P_ij − |I| (the records i and j share with not every
// party) is small; a histogram whose total is small is suppressed whole,
// and otherwise, with any small bin, the smallest other non-zero bins are
// suppressed with it until at least two are and their sum is not small (the
// total is taken as known: a mean over the same field releases it); a
// count_if is suppressed when its complement is small against |I| times its
// parties or against a count, mean or variance over the same field and
// parties. A party's own member list (reveal: membership) is withheld when
// |I| is small (Result.MembersSuppressed).
package session
