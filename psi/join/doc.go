// Package join computes the coordinator's intersection of n token lists,
// step 3 ("Intersection") of the protocol in DESIGN.md §4.
//
// After the token round the coordinator holds, for each party i, a list T_i
// of pseudorandom 32-byte [Token] values, one per record position in party
// i's shuffled order. [Join] computes
//
//   - |I|, the number of tokens present in all n lists;
//   - optionally, the n×n matrix of pairwise overlaps |T_i ∩ T_j|
//     (diagonal: |T_i|), for sessions that reveal "pairwise";
//   - for each party, the increasing list of its positions whose token is
//     in I, which the coordinator sends back to that party (DESIGN.md §4:
//     every party learns its own positions in I in v1).
//
// Message flow around this package:
//
//	party 1 ──T_1──┐
//	party 2 ──T_2──┼─► coordinator: Join(T_1..T_n) ─► |I|, pairwise
//	party n ──T_n──┘                      │
//	                                      └─► Positions[i] ─► party i
//
// # Algorithm
//
// Join is a sort-merge join on fixed-size keys. Each list is turned into
// 16-byte records (first 8 token bytes as a big-endian uint64 key, 4-byte
// position, a mark set by the merge) and sorted: one counting pass on the leading
// log2(len)-4 key bits (at most 16) scatters records straight into buckets
// of about 8–16 records, each then sorted by comparison (insertion sort, or
// pdqsort for a large bucket, so adversarially skewed tokens cost
// O(len log len), not quadratic time). Ties on the 8-byte key, which for
// uniform tokens happen with probability about len²/2^65, fall back to the
// other 24 bytes read from the caller's list. Duplicate tokens in a list
// are adjacent after sorting and are reported as [ErrDuplicateToken].
//
// The sorted lists are then merged n ways. The key space is cut into as
// many contiguous ranges as there are workers (fewer for small inputs, so
// that a range averages at least 16384 tokens); each range is merged
// independently (a binary search finds each list's slice of the range),
// counting every token present in all lists and, if asked, every pair of
// lists that share a token. Positions come out in token order and are put
// in position order with a bitmap per list.
//
// The lists are sorted in parallel (one list per worker) and the key ranges
// merged in parallel, on at most [Options].Workers goroutines, none of
// which outlive the call.
//
// A hash join (map[Token]…) gives the same result; the tests keep one as
// the oracle and BenchmarkJoin compares the two. With n = 3 lists of 10^5
// to 10^6 tokens the sort join was 2.4–4.3 times faster than the map join
// on one core (4–7 times with two workers) and allocates about 18 bytes
// per token instead of the map's 78–93.
//
// # Memory
//
// With N the total number of tokens over all lists and |I| the size of the
// intersection, Join allocates, beyond the caller's lists (32 bytes per
// token, never copied):
//
//   - 16 bytes per token for the sorted records (8-byte key, 4-byte
//     position, the merge's "in I" mark in what would be padding);
//   - at most 0.5 byte per token of bucket counters, one list at a time
//     per worker;
//   - 1/8 byte per token for the position bitmaps;
//   - 4 bytes per element of I per list, for the returned Positions;
//   - O(n²·Workers) for the pairwise counters and range bounds.
//
// That is at most 16.7 bytes per token plus 4·n bytes per element of I.
// BenchmarkJoin reports the measured figure as B/token (TotalAlloc over
// the input tokens): 18.4 B/token for n = 3 lists of 10^6 tokens with |I|
// half of each list (16.6 + 3·4·5·10^5 / 3·10^6 = 18.6 predicted).
//
// # Large inputs: a memory budget with spilling (not implemented yet)
//
// Join needs all lists in memory. The design for inputs beyond a memory
// budget follows the same key-range split the parallel merge already uses.
// It adds API beside Join and changes none of it: a Spiller built from a
// budget and a temporary directory, fed batch by batch as the token round
// streams in (Add(list int, first uint32, batch []Token) error, so the
// caller can stop between batches, as for the rest of psi), then
// Join(Options) (*Result, error) with the same [Options] and [Result].
//
//  1. Partition. For each party, each (token, position) pair is appended
//     to one of P spill files chosen by the token's leading log2(P) bits
//     (P a power of two chosen so that one partition of all n parties fits
//     the budget once loaded: 32 B/token for the tokens plus Join's
//     16.7 B/token, so P ≥ 49·N/budget, rounded up).
//     On disk a record is the 36-byte (token, position) pair. Tokens are
//     uniform, so partitions are balanced; a partition that still exceeds
//     the budget (skewed input from a misbehaving party) is split again on
//     the next bits, and a party's list is rejected as soon as its size
//     exceeds the size it declared. Memory while partitioning: one write
//     buffer per (party, partition).
//  2. Join each partition. Partition p holds, for every party, exactly the
//     tokens with prefix p, so I ∩ p depends on nothing else: load its n
//     files, run the in-memory join (sort, merge) on them, and add |I ∩ p|
//     and its pairwise counts to the totals. Duplicates are found per
//     partition, which is complete since equal tokens share a prefix.
//     Partitions are independent, exactly like the merge's key ranges
//     today, so W workers join W partitions with budget/W each.
//  3. Positions. Each partition appends its positions in I per party to a
//     positions spill file. At the end, per party, a bitmap of one bit per
//     position (len/8 bytes: 125 KB per 10^6 tokens) is filled from them
//     and scanned, which yields Positions in increasing order; for lists
//     so long that the bitmap itself exceeds the budget, the positions are
//     partitioned a second time by their high bits and each slice's bitmap
//     is scanned in turn. A later Result accessor can stream Positions to
//     the caller instead of holding 4·n·|I| bytes.
//
// The cost is one extra write and read of the input (36 B/token) and of
// the positions; memory is bounded by the budget plus O(P·n) buffers.
//
// # Security model
//
// Join runs at the coordinator in the semi-honest model of DESIGN.md §1.
// The coordinator may learn the token sets, |I| and, when revealed, the
// pairwise overlaps; the positions it computes are sent to their owners.
// Tokens are pseudorandom under the session's keys and reveal nothing
// about identifiers to the coordinator on their own. Inputs are treated as
// untrusted: duplicate tokens and oversize lists are rejected with errors
// that name only the list index, never token bytes, and no input can make
// Join panic or take more than O(N log N) time.
//
// # Constant time
//
// Join is not constant time and is not meant to be: sorting and merging
// branch on token comparisons, and memory access depends on token values.
// This is accepted because the only party running Join, the coordinator,
// already holds every token it processes, and timing reveals at most what
// the coordinator is allowed to learn (set sizes, |I|, pairwise overlaps).
// Tokens are compared with ordinary comparisons, not crypto/subtle, for
// the same reason.
package join
