// Package clk encodes records into cryptographic linkage keys (CLKs) and
// links CLKs across parties by similarity, for error-tolerant private
// record linkage.
//
// A CLK is a Bloom filter into which every feature of a record (given name,
// surname, date of birth, …) inserts its tokens (n-grams, exact values or
// numeric neighbourhoods) at positions chosen by keyed hashes (Schnell,
// Bachteler and Reiher 2009). Two CLKs of records that differ by a typo share
// most of their set bits, so the Sørensen–Dice coefficient of the filters
// approximates the similarity of the records.
//
// # Encoding
//
// [ParseSchema] reads a linkage schema of clkhash's format, version 3;
// [NewEncoder] derives the per-feature keys from a secret shared by the
// parties (HKDF, RFC 5869); [Encoder.Encode] produces the CLK of one record.
// The output is byte for byte that of clkhash 0.18.3 (CSIRO Data61's
// reference implementation), which testdata/vectors.json checks; options
// whose clkhash behaviour is not reproduced exactly are refused at parse
// time or per record, never encoded differently.
//
// # Linking
//
// [Link] takes one [Set] per party (from [NewSet] or the wire decoder
// [DecodeSet]), finds the candidate pairs of records of different parties
// whose Dice coefficient reaches a threshold, and groups them with the
// greedy rule of anonlink's greedy_solve: candidates in decreasing
// similarity, two groups merged when every cross pair is a candidate, so
// that each group holds at most one record per party. On the same
// candidates it returns exactly anonlink 0.15.3's groups.
//
// Candidate search is either exhaustive within a popcount window (exact,
// quadratic) or blocked by locality-sensitive hashing over sampled bits
// (cost linear in the set sizes, a measured recall cost); see [Blocking].
//
// # What the linker sees
//
// Whoever runs [Link] holds every party's CLKs. Without the secret it cannot
// encode guesses, but CLKs are not encryption: bit patterns repeat for
// frequent values and are open to frequency and pattern-mining attacks, and
// the Dice scores reveal how similar any two records are. doc/DESIGN.md
// (§5, CLK mode) discusses what this costs and the hardening options.
package clk
