// Package join computes the coordinator's intersection of n token lists,
// step 3 ("Intersection") of the protocol in doc/DESIGN.md §4.
//
// After the token round the coordinator holds, for each party i, a list T_i
// of pseudorandom 32-byte [Token] values, one per record position in party
// i's shuffled order. [Join] computes
//
//   - |I|, the number of tokens present in all n lists;
//   - optionally, the n×n matrix of pairwise overlaps |T_i ∩ T_j|
//     (diagonal: |T_i|), for sessions that reveal "pairwise";
//   - for each party, the increasing list of its positions whose token is
//     in I, which the coordinator sends back to that party (doc/DESIGN.md §4:
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
// # Large inputs: a memory budget with spilling
//
// Join needs all lists in memory (32 bytes per token, held by the caller,
// plus its own 16.7). A [Spiller] joins lists of any size within a memory
// budget, reusing Join's sort and merge for one partition of the key space
// at a time; it gives the same [Result] and the same errors as Join. It is
// fed as the token round streams in, so the lists are never held whole:
//
//	s, err := NewSpiller(sizes, SpillOptions{Budget: 64 << 20, Pairwise: pw})
//	defer s.Close()              // removes the temporary directory
//	err = s.Add(i, first, batch) // per batch, in order within a list
//	res, err := s.Join(ctx)      // once every list is complete
//
// It works in four steps.
//
//  1. Partition. NewSpiller takes the declared list sizes and chooses the
//     number of partitions P, a power of two, so that one partition of
//     all n lists fits one worker's share of the budget once loaded. A
//     loaded token costs 52.5 bytes: the token (32), its position in its
//     party's list (4: the in-memory join sees positions within the
//     partition), its sort record (16) and at most half a byte of bucket
//     counters. (The design said 49 bytes, 32 plus Join's 16.7; but
//     Join's 4 bytes per element of I do not arise here, and the 4-byte
//     position map was missing.) With N = Σsizes, W workers and B the
//     budget less the position bitmaps (N/8 bytes) and a 72 KiB read
//     buffer per worker, P is the smallest power of two with
//     8·(52·⌈N/P⌉ + ⌈max(sizes)/P⌉/2) ≤ 7·B/W, that is 1/8 headroom for
//     the random spread of partition sizes, raised towards 2·W while
//     partitions keep at least 16384 tokens so that the workers share
//     the partitions. P is at most 4096; a budget that cannot meet that,
//     or cannot hold the bitmaps, is rejected with the minimum it needs.
//     Add routes each (token, position) pair by the token's leading
//     log2(P) bits to a write buffer per (list, partition) of up to 2048
//     records, and appends full buffers as blocks of 36-byte records to
//     one spill file, keeping an index of the blocks (16 bytes per
//     block). One file rather than one per (list, partition): creating a
//     file cost 0.07–1.1 ms on the development machine's ext4, so a
//     256-partition, 6-list test run with its 1536 files took 1.6–3.4 s
//     (0.2 s on tmpfs); and one file holds no descriptors whatever P. Batches must be contiguous per
//     list, and a list is rejected as soon as it would exceed its
//     declared size ([ErrTooManyTokens]).
//  2. Join each partition. Partition p holds, for every list, exactly the
//     tokens with prefix p, so I ∩ p depends on nothing else. W workers
//     take the partitions in turn; each loads one into buffers it keeps
//     for the whole Join, sorts every list with sortList (which finds
//     duplicates: they share a partition), runs one n-way merge and adds
//     |I ∩ p| and the pairwise counts to its totals. Duplicates are
//     reported for the lowest list holding one, as by Join, so the
//     workers go on checking lower lists after a duplicate is found.
//  3. Positions. The merge marks the records of I; their positions in
//     their lists are set in one bitmap per list (atomic ORs, as
//     partitions share words), and each bitmap is scanned at the end into
//     Positions in increasing order. For 5·10^5 positions of a list of
//     10^6 this took 3.2 ms against 48 ms for sorting them. The bitmaps
//     take N/8 bytes of the budget (125 MB per 10^9 tokens); a second
//     split of the positions for lists whose bitmaps exceed the budget,
//     and streaming Positions to the caller, are not implemented.
//  4. Skew. A partition whose load exceeds its budget (tokens from a
//     misbehaving party, or an unlucky spread) is split 256 ways on the
//     8 token bits after the common prefix of its tokens, into a scratch
//     file per worker (emptied after each top-level partition), and the
//     parts are processed in turn, recursively. A part records the common
//     prefix of its least and greatest token, so each level consumes at
//     least 8 more bits: at most 32 levels whatever the input, each
//     rewriting at most the partition. A part whose tokens are all equal
//     is a duplicate if a list holds it twice, and otherwise has at most
//     n tokens. Every other partition joined in memory fits the budget
//     (TestSpillSplitBudget checks it).
//
// The budget bounds the Spiller's live data: during Add the write buffers
// (up to the budget in all, but at least 4.5 KiB per list and partition
// that receives tokens), during Join the bitmaps and W loaded partitions.
// Beyond the budget come the block index, the Result (4·n·|I| bytes) and,
// as for any Go code, garbage not yet collected: the write buffers, freed
// when the lists complete, stay in the heap until the next collection (a
// memory limit, GOMEMLIMIT, keeps the heap near the live data).
//
// Disk: the input is written once and read once per Join, 36 bytes per
// token each way; split partitions are written and read once more per
// level. BenchmarkSpill (3 lists of 10^6 tokens, half in all three, the
// input of BenchmarkJoin), run once with
//
//	go test -run '^$' -bench BenchmarkSpill -benchtime 1x ./psi/join/
//
// at commit e37157f on 2 shared cores (load average about 4, so times
// vary by up to 2× between runs), measured per input token:
//
//	                       pairwise  ns/token (Add + Join)  peak heap  disk
//	Spiller, 16 MiB, P=32  no        534 (49 + 485)          8.1 B     36 B
//	Spiller, 64 MiB, P=8   no        503 (37 + 467)         16.2 B     36 B
//	Join                   no        515                    18.4 B     -
//	Spiller, 16 MiB, P=32  yes       529 (83 + 446)          8.2 B     36 B
//	Spiller, 64 MiB, P=8   yes       434 (48 + 385)         16.2 B     36 B
//	Join                   yes       259                    18.4 B     -
//
// Peak heap is the heap in use above the heap before the run, which holds
// the benchmark's input lists: 32 B/token that Join needs in memory and
// the Spiller does not. It includes the Result's 2 B/token. At 16 MiB it
// is 24 MB: about 10 MB of loaded partitions and bitmaps, 6 MB of Result
// and 7 MB of write buffers freed at the end of Add but not yet
// collected. In a quieter run the times were 255 and 214 ns/token for the
// Spiller at 16 and 64 MiB against 209 for Join (pairwise=false): with
// the spill file in the page cache, spilling costs up to a fifth more
// time, mostly Add's copy and write.
//
// # Security model
//
// Join runs at the coordinator in the semi-honest model of doc/DESIGN.md §1.
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
