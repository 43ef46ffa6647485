// Package mhe implements the cryptographic core of the encrypted aggregation
// mode (doc/DESIGN.md §4, "Encrypted aggregation"; issue 7) on top of lattigo
// v5.0.7's multiparty BGV (packages mhe, schemes/bgv, core/rlwe). The design
// and every number below follow the measured study in notes/lattigo.md.
//
// The package is sans-I/O: it performs no network access, starts no
// goroutines, reads no clocks and logs nothing. It holds no global mutable
// state. It writes no lattice cryptography of its own: keys, shares,
// encryption, evaluation and key switching are lattigo's; this package adds
// the protocol objects, the coefficient layout, the checks, and a canonical
// wire codec.
//
// # Protocol
//
// After the token rounds, party i holds m_i records in a secret shuffled
// order (positions 0..m_i−1), each with a contribution vector c ∈ Z^L; the
// coordinator knows a 0/1 indicator per position (is the record in the
// intersection I?). The released aggregate is Σ_i Σ_{p ∈ I} c_p.
//
//	Party i                           Coordinator                      Recipient
//	-------                           -----------                      ---------
//	sk_i := NewParty                                                    (sk_R, pk_R) := NewRecipient
//	CKGShareMsg     ------------------> AggregateCKG
//	GaloisSharesMsg ------------------> AggregateGalois (Trace keys)
//	                <------------------ PublicKeyMsg (cpk; party checks its CRP)
//	[t < n only] ThresholdShareMsg (SECRET, sealed to party j, relayed)
//	             AggregateThresholdShares → Shamir share of Σ sk_i
//	EncryptContributions(cpk, c)
//	CiphertextMsg × ⌈m_i/B⌉ ----------> Accumulator.Add: ct × (Σ_s ind_s X^s), Σ
//	                                    Finalize: Trace (+ Rescale), + Enc_cpk(0)
//	                                    Aggregate.PCKSRequest(active)
//	                <------------------ PCKSRequestMsg (c1 only, t active ids)
//	                <------------------------------------------------- RecipientKeyMsg (pk_R)
//	GenPCKSShare (t parties; with t<n via Combiner) with smudging
//	PCKSShareMsg    ------------------> Aggregate.KeySwitch
//	                                    ResultMsg ---------------------> Decrypt → L totals
//
// Common reference polynomials come from one BLAKE2b keyed PRNG per protocol
// instance (lattigo's sampling.KeyedPRNG), keyed SHA-256(label ‖ session ‖
// instance ‖ Galois element), so no call order can desynchronise them. All
// other randomness (secret keys, errors, Shamir polynomials, encryption,
// smudging) is lattigo's, seeded from crypto/rand. The [SessionID] hashes
// the session name with a fingerprint of the [Params], so messages of
// another session or parameter set are rejected.
//
// # Coefficient packing
//
// K is the smallest power of two ≥ L (K = 2 is replaced by 4, because
// lattigo's Trace(·, 0) keeps multiples of N only) and B = N/K positions go
// in one ciphertext. Component j of position s is placed at coefficient
// (j·B − s) mod N, negated when the index wraps (X^{−s} = −X^{N−s}). The
// coordinator multiplies by the plaintext Σ_s ind_s X^s (coefficients 0/1, so
// the ct×pt noise grows only additively), which puts Σ_s ind_s c_{s,j} at
// coefficient j·B; every cross term lands on an index that is not a multiple
// of B, and Trace over the subgroup of order N/K (log2(N/K) Galois keys)
// zeroes those and keeps the multiples of B. The recipient checks that every
// coefficient other than the L totals decrypts to 0 ([ErrDecryption]).
// Values are read as two's-complement int64, reduced modulo T, and the totals
// are returned as the centred lift modulo T (as uint64 in Z_2^64, like
// package sharing).
//
// # Parameters and their checks
//
// [ProfileA] (N = 2^14, Q = 3×60, P = 60 bits, logQP 240, Rescale after
// Trace) and [ProfileB] (N = 2^13, Q = 2×60, P = 60 bits, logQP 180) use T =
// 36028797019389953 ≈ 2^55 and PCKS smudging σ = 2^55 (bound 6σ). [NewParams]
// checks: (1) logQP against the HE standard's 128-bit table for uniform
// ternary secrets ([CheckSecurity]: 109, 218, 438, 881 bits for N = 2^12..2^15;
// lattigo checks nothing); (2) that lattigo's default secret and error
// distributions are the ones the table assumes; (3) that T is a prime below
// every q_i; (4) the declared bounds: 2·Parties·MaxRecords·MaxAbs[j] < T for
// every component j, so every total is exact under the centred lift
// (otherwise [ErrBoundsTooLarge], naming the component); (5) the smudging
// sampler's limits (6σ below every q_i, σ ≤ 2^56) and deterministic
// decryption correctness 2·T·(2^40 + t·6σ) < Q_ℓ at the output level, where
// 2^40 is an assumed bound on the evaluation noise (measured ≤ 2^22.6 at 16
// parties × 2^20 positions). Contributions outside MaxAbs and record counts
// above MaxRecords are refused at encryption.
//
// # Wire format
//
// Every message is version ‖ type ‖ session ‖ sender ‖ fixed fields ‖
// coefficients (little-endian uint64, residue by residue). Its length is
// fully determined by the parameters, so UnmarshalBinary checks the exact
// length, the header and fixed fields (Galois elements, chunk index and
// count, active set), and that every coefficient is below its modulus, and
// fills preallocated lattigo structures. Lattigo's own deserializers are never
// called on received bytes (they crash the process on truncated input and
// accept trailing bytes and unreduced coefficients). The encoding is
// canonical; FuzzUnmarshal* targets check that arbitrary input never panics
// and that accepted input re-encodes identically. Messages are allocated by
// [Params] methods (for example [Params.NewCiphertextMsg]); they are plain
// values, not safe for concurrent mutation.
//
// # Security model
//
// Semi-honest parties and coordinator (lattigo's mhe protocols are passively
// secure only; a deviating party can corrupt keys or results undetected,
// although a garbled result is usually caught by the zero check). Access
// structure: n-of-n, or t-of-n with lattigo's Thresholdizer (Shamir points
// id+1, never 0). Key generation needs all n parties; afterwards up to n − t
// parties may vanish once they have sent their ciphertexts, and the output
// round runs with any t; if an active party vanishes mid-output, the
// coordinator restarts it with another active set.
//
// Secret values: each party's sk_i ([PartyKeys], never serialised), its
// Shamir polynomial and the Shamir shares ([ThresholdShareMsg], which the
// caller must seal to the recipient party), the additive shares derived for
// PCKS, the recipient's secret key, and every contribution. The coordinator
// holds only public material (collective public key, Galois keys, CRPs,
// ciphertexts); a test checks by reflection that nothing reachable from it
// is a secret-key or secret-sharing type.
//
// What leaks, and to whom:
//   - Everyone: n, t, L, the parameters, and each party's record count m_i
//     through its ciphertext count ⌈m_i/B⌉ (the coordinator knows m_i
//     anyway).
//   - Coordinator: nothing about contribution values (RLWE under a key it
//     has no share of) as long as fewer than t parties collude with it; it
//     knows I by construction.
//   - Parties: nothing about I — they never see the indicators, the
//     aggregate ciphertext's c0, or any decryption. PCKS requests carry only
//     c1 of the aggregate, after the coordinator has added a fresh
//     encryption of zero under the collective key; without that, c1 would be
//     a public function of the parties' own c1s and the indicators (0 when I
//     is empty). With it, c1 is pseudorandom to any coalition of parties
//     (RLWE), and a coalition of fewer than t parties learns nothing else.
//   - Recipient: the L totals. The decryption also reveals m + T·e for the
//     final noise e; PCKS smudging (σ = 2^55) floods the evaluation noise
//     (≈ 2^9 after Rescale in Profile A, ratio ≈ 2^46; ≈ 2^22 in Profile B,
//     ratio ≈ 2^33). Lattigo samples σ = 2^55 Gaussians in float64, so the
//     low ~3 bits of each smudging sample are rounded; the statistical
//     argument treats them as Gaussian.
//   - All the L totals of one aggregate are released together; a component
//     that must stay hidden (e.g. a small cell) needs its own aggregation.
//   - t colluding parties can decrypt anything encrypted under the
//     collective key that they obtain; with the coordinator they obtain all
//     ciphertexts (threshold trust assumption).
//
// # Constant time
//
// Lattigo's samplers and arithmetic are not audited for constant time; the
// big-integer Gaussian path is documented by lattigo as possibly variable
// time. Indicator encoding branches on the indicator, which only the
// coordinator knows. Contribution bounds are checked with data-dependent
// branches on the party's own data.
//
// # Costs (2 vCPU AMD EPYC, go1.26, 1 goroutine, L = 3, 3 parties, m = 10k)
//
// Two benchmark runs; the machine varies by up to ±30% between runs.
//
//	                                          Profile A           Profile B
//	party: EncryptContributions + marshal     33–47 ms, 3 cts     21–25 ms, 5 cts
//	party: upload for 10k positions           2.36 MB             1.31 MB
//	party: setup (CKG + Galois shares, enc.)  250–284 ms, 19.4 MB 52–64 ms, 4.5 MB
//	party: PCKS share (t = 2)                 7.7–10.5 ms         3.9–4.8 ms
//	coordinator: decode + evaluate 3×10k      148–176 ms (9 cts)  36–51 ms (15 cts)
//
// Evaluation is dominated by Trace (≈ 100 ms in A, ≈ 30 ms in B, per the
// notes); each further ciphertext costs the coordinator well under 1 ms
// (decode, indicator encoding, one ct×pt). See BenchmarkEncryptContributions,
// BenchmarkEvaluate, BenchmarkPartySetup and BenchmarkPCKSShare.
package mhe
