package mhe

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"math/bits"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/ring"
	"github.com/tuneinsight/lattigo/v5/schemes/bgv"
)

// Limits on the session part of a [ParamsLiteral].
const (
	// MaxParties is the largest number of parties accepted.
	MaxParties = 256
	// MaxComponents is the largest aggregate length L accepted.
	MaxComponents = 256
	// MaxRecordsLimit is the largest per-party record count accepted.
	MaxRecordsLimit = 1 << 26
	// MaxLogSmudgingSigma is the largest log2 of the PCKS smudging standard
	// deviation accepted. Above it lattigo's Gaussian sampler either writes
	// unreduced values (6σ ≥ q_i) or panics (σ > 2^53 with a bound > 2^64);
	// see notes/lattigo.md §4.3.
	MaxLogSmudgingSigma = 56
)

// DefaultPlaintextModulus is the plaintext modulus of both profiles:
// 36028797019389953 = 2^55 + 13·2^15 + 1, prime and ≡ 1 mod 2^15.
const DefaultPlaintextModulus uint64 = 36028797019389953

// logEvalNoiseBound is the log2 of the bound we assume on the evaluation
// noise (in lattigo's "e" units, before smudging) of the aggregate
// ciphertext. The measured maximum is 2^22.6 at 16 parties × 2^20 positions
// (notes/lattigo.md §2.2), growing as √(parties·ciphertexts); 2^40 leaves 17
// bits of slack. It is used only in the decryption-correctness check.
const logEvalNoiseBound = 40

// heStandard128Ternary maps log2(N) to the largest log2(QP) that gives 128-bit
// classical security for a uniform ternary secret and error σ ≈ 3.2, from
// Table 1 of the Homomorphic Encryption Standard (M. Albrecht et al.,
// "Homomorphic Encryption Security Standard", HomomorphicEncryption.org,
// November 2018, https://homomorphicencryption.org/standard/). The same
// bounds appear in lattigo's example parameters (e.g.
// bgv.ExampleParameters128BitLogN14LogQP438). Lattigo itself checks nothing.
func heStandard128Ternary(logN int) (maxLogQP int, ok bool) {
	switch logN {
	case 10:
		return 27, true
	case 11:
		return 54, true
	case 12:
		return 109, true
	case 13:
		return 218, true
	case 14:
		return 438, true
	case 15:
		return 881, true
	}
	return 0, false
}

// CheckSecurity reports whether a ring of degree 2^logN with a modulus QP of
// logQP bits reaches 128-bit classical security for uniform ternary secrets
// and Gaussian errors of σ ≈ 3.2 (lattigo's defaults), according to the HE
// standard's table. It returns an error wrapping [ErrInsecureParams] that
// names the violated bound, or nil.
func CheckSecurity(logN int, logQP float64) error {
	maxLogQP, ok := heStandard128Ternary(logN)
	if !ok {
		return fmt.Errorf("%w: logN = %d is not in the HE standard table (10..15)", ErrInsecureParams, logN)
	}
	if logQP > float64(maxLogQP) {
		return fmt.Errorf("%w: logQP = %.2f > %d, the 128-bit bound for logN = %d", ErrInsecureParams, logQP, maxLogQP, logN)
	}
	return nil
}

// ParamsLiteral is an unchecked description of the parameters of one
// encrypted aggregation: the homomorphic-encryption profile (first block)
// and the session's declared bounds (second block). [NewParams] checks it.
// [ProfileA] and [ProfileB] fill the first block.
type ParamsLiteral struct {
	// LogN is log2 of the ring degree N.
	LogN int `json:"log_n"`
	// LogQ lists the bit sizes of the ciphertext primes (each ≤ 60).
	LogQ []int `json:"log_q"`
	// LogP lists the bit sizes of the key-switching primes.
	LogP []int `json:"log_p"`
	// PlaintextModulus is T, a prime below every ciphertext prime.
	PlaintextModulus uint64 `json:"plaintext_modulus"`
	// LogSmudgingSigma is log2 of the standard deviation of the PCKS
	// smudging noise; the sampler's bound is 6σ.
	LogSmudgingSigma int `json:"log_smudging_sigma"`
	// Rescale drops the top prime after Trace (Profile A), which divides the
	// evaluation noise by that prime before smudging.
	Rescale bool `json:"rescale"`

	// Parties is the number of parties n.
	Parties int `json:"parties"`
	// Threshold is t for a t-of-n secret key; 0 (or n) means n-of-n.
	Threshold int `json:"threshold"`
	// Components is L, the length of each contribution vector and of the
	// aggregate.
	Components int `json:"components"`
	// MaxRecords bounds the number of records (positions) of any one party.
	MaxRecords int `json:"max_records"`
	// MaxAbs bounds |c_j| for each component j of every contribution (the
	// values are read as two's-complement int64). len(MaxAbs) == Components.
	MaxAbs []uint64 `json:"max_abs"`
}

// ProfileA returns the recommended profile of notes/lattigo.md §3.1: N =
// 2^14, Q = 3×60 bits, P = 60 bits (logQP 240 ≤ 438), T ≈ 2^55, one Rescale
// after Trace, smudging σ = 2^55. The session fields are left zero.
func ProfileA() ParamsLiteral {
	return ParamsLiteral{
		LogN:             14,
		LogQ:             []int{60, 60, 60},
		LogP:             []int{60},
		PlaintextModulus: DefaultPlaintextModulus,
		LogSmudgingSigma: 55,
		Rescale:          true,
	}
}

// ProfileB returns the lean profile of notes/lattigo.md §3.1: N = 2^13, Q =
// 2×60 bits, P = 60 bits (logQP 180 ≤ 218), T ≈ 2^55, no Rescale, smudging σ
// = 2^55. Its smudging-to-noise ratio is ≈ 2^33 against ≈ 2^46 for Profile
// A. The session fields are left zero.
func ProfileB() ParamsLiteral {
	return ParamsLiteral{
		LogN:             13,
		LogQ:             []int{60, 60},
		LogP:             []int{60},
		PlaintextModulus: DefaultPlaintextModulus,
		LogSmudgingSigma: 55,
		Rescale:          false,
	}
}

// Params are checked, immutable parameters for one encrypted aggregation.
// Build them with [NewParams]. A *Params is safe for concurrent use.
type Params struct {
	lit         ParamsLiteral
	bgv         bgv.Parameters
	k, logK     int // K = number of coefficient blocks (power of two ≥ Components, never 2)
	b           int // positions per ciphertext, N/K
	traceLogN   int // argument to Trace
	galEls      []uint64
	galDims     []int // gadget decomposition of a Galois share: len = RNS size, values = base-2 sizes
	resultLevel int
	resultScale rlwe.Scale
	smudging    ring.DiscreteGaussian
	id          [32]byte
}

// NewParams checks lit and returns the parameters. It checks, in order, the
// session fields, the 128-bit security of (LogN, logQP) against the HE
// standard ([CheckSecurity]), that lattigo accepts the chain, that T is a
// prime below every ciphertext prime, that T > 2·(largest possible
// aggregate) = 2·Parties·MaxRecords·MaxAbs[j] for every component j (so the
// centred lift of each total is exact), and that the smudging noise keeps
// decryption correct: T·(2^40 + t·6σ) < Q_ℓ/2 at the output level ℓ, with 6σ
// below every prime. Errors wrap [ErrInvalidParams], [ErrInsecureParams] or
// [ErrBoundsTooLarge] and name the violated bound.
func NewParams(lit ParamsLiteral) (*Params, error) {
	if lit.Parties < 2 || lit.Parties > MaxParties {
		return nil, fmt.Errorf("%w: parties = %d, want 2..%d", ErrInvalidParams, lit.Parties, MaxParties)
	}
	if lit.Threshold != 0 && (lit.Threshold < 2 || lit.Threshold > lit.Parties) {
		return nil, fmt.Errorf("%w: threshold = %d, want 0 (n-of-n) or 2..%d", ErrInvalidParams, lit.Threshold, lit.Parties)
	}
	if lit.Components < 1 || lit.Components > MaxComponents {
		return nil, fmt.Errorf("%w: components = %d, want 1..%d", ErrInvalidParams, lit.Components, MaxComponents)
	}
	if lit.MaxRecords < 1 || lit.MaxRecords > MaxRecordsLimit {
		return nil, fmt.Errorf("%w: max_records = %d, want 1..%d", ErrInvalidParams, lit.MaxRecords, MaxRecordsLimit)
	}
	if len(lit.MaxAbs) != lit.Components {
		return nil, fmt.Errorf("%w: len(max_abs) = %d, want components = %d", ErrInvalidParams, len(lit.MaxAbs), lit.Components)
	}
	if lit.LogSmudgingSigma < 0 || lit.LogSmudgingSigma > MaxLogSmudgingSigma {
		return nil, fmt.Errorf("%w: log_smudging_sigma = %d, want 0..%d", ErrInvalidParams, lit.LogSmudgingSigma, MaxLogSmudgingSigma)
	}
	if len(lit.LogQ) == 0 || len(lit.LogP) == 0 {
		return nil, fmt.Errorf("%w: log_q and log_p must be non-empty", ErrInvalidParams)
	}
	declared := 0
	for _, v := range append(append([]int(nil), lit.LogQ...), lit.LogP...) {
		if v < 1 || v > 60 {
			return nil, fmt.Errorf("%w: prime size %d bits, want 1..60", ErrInvalidParams, v)
		}
		declared += v
	}
	// Check the declared sizes first so that nothing insecure is built.
	if err := CheckSecurity(lit.LogN, float64(declared)); err != nil {
		return nil, err
	}
	if lit.Rescale && len(lit.LogQ) < 2 {
		return nil, fmt.Errorf("%w: rescale needs at least two ciphertext primes", ErrInvalidParams)
	}

	T := lit.PlaintextModulus
	if T < 17 || !new(big.Int).SetUint64(T).ProbablyPrime(32) {
		return nil, fmt.Errorf("%w: plaintext modulus %d is not a prime ≥ 17", ErrInvalidParams, T)
	}

	bp, err := bgv.NewParametersFromLiteral(bgv.ParametersLiteral{
		LogN:             lit.LogN,
		LogQ:             lit.LogQ,
		LogP:             lit.LogP,
		PlaintextModulus: T,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: lattigo: %v", ErrInvalidParams, err)
	}
	if err := CheckSecurity(bp.LogN(), bp.LogQP()); err != nil {
		return nil, err
	}
	// The HE-standard table assumes uniform ternary secrets and σ ≈ 3.2.
	if xs, ok := bp.Xs().(ring.Ternary); !ok || xs.H != 0 || math.Abs(xs.P-2.0/3.0) > 1e-9 {
		return nil, fmt.Errorf("%w: secret distribution %v is not uniform ternary", ErrInsecureParams, bp.Xs())
	}
	if xe, ok := bp.Xe().(ring.DiscreteGaussian); !ok || xe.Sigma < 3.19 {
		return nil, fmt.Errorf("%w: error distribution %v is not a Gaussian with σ ≥ 3.19", ErrInsecureParams, bp.Xe())
	}
	for i, q := range bp.Q() {
		if T >= q {
			return nil, fmt.Errorf("%w: plaintext modulus %d ≥ q_%d = %d", ErrInvalidParams, T, i, q)
		}
	}

	// Bounds: 2·n·m·max|c_j| < T for every component j.
	bigT := new(big.Int).SetUint64(T)
	for j, a := range lit.MaxAbs {
		agg := new(big.Int).SetUint64(a)
		agg.Mul(agg, big.NewInt(int64(lit.Parties)))
		agg.Mul(agg, big.NewInt(int64(lit.MaxRecords)))
		agg.Lsh(agg, 1)
		if agg.Cmp(bigT) >= 0 {
			return nil, fmt.Errorf("%w: component %d: 2·parties·max_records·max_abs = 2·%d·%d·%d ≈ 2^%.1f ≥ T ≈ 2^%.1f",
				ErrBoundsTooLarge, j, lit.Parties, lit.MaxRecords, a, log2Big(agg), log2Big(bigT))
		}
	}

	p := &Params{lit: cloneLiteral(lit), bgv: bp}

	// Coefficient layout: K blocks of B = N/K positions. K = 2 is avoided
	// because Trace(·, 0) keeps only multiples of N, not of N/2.
	p.k = 1
	for p.k < lit.Components {
		p.k <<= 1
	}
	if p.k == 2 {
		p.k = 4
	}
	p.logK = bits.TrailingZeros(uint(p.k))
	if p.k > bp.N()/2 {
		return nil, fmt.Errorf("%w: components = %d need %d blocks, more than N/2 = %d", ErrInvalidParams, lit.Components, p.k, bp.N()/2)
	}
	p.b = bp.N() / p.k
	if p.k > 1 {
		p.traceLogN = p.logK - 1
	}
	p.galEls = rlwe.GaloisElementsForTrace(bp, p.traceLogN)
	p.galDims = bp.BaseTwoDecompositionVectorSize(bp.MaxLevelQ(), bp.MaxLevelP(), 0)
	if len(p.galDims) != bp.BaseRNSDecompositionVectorSize(bp.MaxLevelQ(), bp.MaxLevelP()) {
		return nil, fmt.Errorf("%w: unexpected gadget decomposition", ErrInvalidParams)
	}

	p.resultLevel = bp.MaxLevel()
	p.resultScale = bp.DefaultScale()
	if lit.Rescale {
		p.resultScale = p.resultScale.Div(bp.NewScale(bp.Q()[bp.MaxLevel()]))
		p.resultLevel--
	}

	// Smudging and decryption correctness at the output level.
	sigma := math.Ldexp(1, lit.LogSmudgingSigma)
	p.smudging = ring.DiscreteGaussian{Sigma: sigma, Bound: 6 * sigma}
	qs := bp.Q()[:p.resultLevel+1]
	for i, q := range qs {
		if 6*sigma >= float64(q) {
			return nil, fmt.Errorf("%w: smudging bound 6σ = 2^%.1f ≥ q_%d", ErrInvalidParams, math.Log2(6*sigma), i)
		}
	}
	qL := big.NewInt(1)
	for _, q := range qs {
		qL.Mul(qL, new(big.Int).SetUint64(q))
	}
	noise := new(big.Int).Lsh(big.NewInt(1), logEvalNoiseBound)
	smudge, _ := new(big.Float).SetFloat64(6 * sigma).Int(nil)
	smudge.Mul(smudge, big.NewInt(int64(p.PCKSParties())))
	noise.Add(noise, smudge)
	noise.Mul(noise, bigT)
	noise.Lsh(noise, 1)
	if noise.Cmp(qL) >= 0 {
		return nil, fmt.Errorf("%w: 2·T·(2^%d + %d·6σ) ≈ 2^%.1f ≥ Q_%d ≈ 2^%.1f: lower log_smudging_sigma or T",
			ErrInvalidParams, logEvalNoiseBound, p.PCKSParties(), log2Big(noise), p.resultLevel, log2Big(qL))
	}

	p.id = p.fingerprint()
	return p, nil
}

func cloneLiteral(lit ParamsLiteral) ParamsLiteral {
	lit.LogQ = append([]int(nil), lit.LogQ...)
	lit.LogP = append([]int(nil), lit.LogP...)
	lit.MaxAbs = append([]uint64(nil), lit.MaxAbs...)
	return lit
}

func log2Big(x *big.Int) float64 {
	f, _ := new(big.Float).SetInt(x).Float64()
	return math.Log2(f)
}

// fingerprint hashes everything that determines message layouts and
// semantics; it is bound into every [SessionID].
func (p *Params) fingerprint() [32]byte {
	h := sha256.New()
	h.Write([]byte(labelParams))
	w := func(v uint64) { h.Write(binary.BigEndian.AppendUint64(nil, v)) }
	w(uint64(p.bgv.LogN()))
	w(uint64(len(p.bgv.Q())))
	for _, q := range p.bgv.Q() {
		w(q)
	}
	w(uint64(len(p.bgv.P())))
	for _, q := range p.bgv.P() {
		w(q)
	}
	w(p.lit.PlaintextModulus)
	w(uint64(p.lit.LogSmudgingSigma))
	if p.lit.Rescale {
		w(1)
	} else {
		w(0)
	}
	w(uint64(p.lit.Parties))
	w(uint64(p.Threshold()))
	w(uint64(p.lit.Components))
	w(uint64(p.lit.MaxRecords))
	for _, a := range p.lit.MaxAbs {
		w(a)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// Literal returns a copy of the literal p was built from.
func (p *Params) Literal() ParamsLiteral { return cloneLiteral(p.lit) }

// BGV returns the underlying lattigo BGV parameters.
func (p *Params) BGV() bgv.Parameters { return p.bgv }

// N returns the ring degree.
func (p *Params) N() int { return p.bgv.N() }

// LogQP returns log2 of the full modulus QP, as checked by [CheckSecurity].
func (p *Params) LogQP() float64 { return p.bgv.LogQP() }

// Parties returns n.
func (p *Params) Parties() int { return p.lit.Parties }

// Threshold returns t; it equals Parties for an n-of-n key.
func (p *Params) Threshold() int {
	if p.lit.Threshold == 0 {
		return p.lit.Parties
	}
	return p.lit.Threshold
}

// IsThreshold reports whether the secret key is t-of-n shared with t < n.
func (p *Params) IsThreshold() bool { return p.Threshold() < p.lit.Parties }

// PCKSParties returns how many parties take part in the output round: t.
func (p *Params) PCKSParties() int { return p.Threshold() }

// Components returns L.
func (p *Params) Components() int { return p.lit.Components }

// MaxRecords returns the declared per-party record bound.
func (p *Params) MaxRecords() int { return p.lit.MaxRecords }

// PositionsPerCiphertext returns B = N/K, the number of record positions one
// ciphertext holds, where K is the smallest power of two ≥ L (never 2).
func (p *Params) PositionsPerCiphertext() int { return p.b }

// CiphertextCount returns how many ciphertexts a party with m records
// sends: ⌈m/B⌉, and at least one.
func (p *Params) CiphertextCount(m int) int {
	if m <= 0 {
		return 1
	}
	return (m + p.b - 1) / p.b
}

// GaloisElements returns the Galois elements whose keys the coordinator
// needs for Trace, in the order parties send their shares.
func (p *Params) GaloisElements() []uint64 { return append([]uint64(nil), p.galEls...) }

// ResultLevel returns the ciphertext level of the aggregate (after the
// optional Rescale), at which PCKS runs.
func (p *Params) ResultLevel() int { return p.resultLevel }

// maxCiphertexts is the largest ciphertext count a party may send.
func (p *Params) maxCiphertexts() int { return p.CiphertextCount(p.lit.MaxRecords) }

// point returns the Shamir public point of party id: id+1, never 0.
func point(id PartyID) uint64 { return uint64(id) + 1 }
