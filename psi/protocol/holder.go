package protocol

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/mpsi-dev/mpsi/psi"
	"github.com/mpsi-dev/mpsi/psi/clk"
	"github.com/mpsi-dev/mpsi/psi/join"
	"github.com/mpsi-dev/mpsi/psi/session"
	"github.com/mpsi-dev/mpsi/sharing"
	"github.com/mpsi-dev/mpsi/sharing/noise"
)

// Records is what a [Holder] needs of a party's loaded records: their
// number, each record's match key (the normalised identifier bytes), its
// logical field values and its record_id. Package party's Records
// implements it. Values never leave the party: the holder turns them into
// tokens and contributions only.
type Records interface {
	Len() int
	Key(i int) []byte
	Value(i int, field string) string
	ID(i int) string
}

// CLKRecords are [Records] of a mode clk session: CLKRecord returns record
// i's values of the schema's features, in schema order (ignored features
// included, as ""), exactly as read, for the CLK encoder. Package party's
// Records implements it.
type CLKRecords interface {
	Records
	CLKRecord(i int) []string
}

// MultiKeyRecords are [Records] with several match keys (a spec with
// match.keys): KeyAt returns record i's key k, or nil when the record has
// no value for key k (a field missing) or shares it with another of the
// party's records (ambiguous within the party). Package party's Records
// implements it. With one key, KeyAt(0, i) is Key(i).
type MultiKeyRecords interface {
	Records
	Keys() int
	KeyAt(k, i int) []byte
}

// Holder is one data holder's local protocol state for one session: its
// records in a secret shuffled order, its dh scalar, its keyed-mode key
// contribution and its outgoing mask seeds. Its rounds are plain methods
// over typed values, which the [Party] machine runs; each round may be run
// once. A Holder is not safe for concurrent use, except [Holder.Hop], which
// may run concurrently with itself.
type Holder struct {
	spec    *session.Spec
	layout  *session.Layout
	name    string
	index   int
	recs    Records
	multi   MultiKeyRecords // recs, when the spec has several keys
	clkRecs CLKRecords      // recs, in mode clk
	keys    int             // number of match keys
	perm    []recordIndex   // shuffled position -> record index
	dh      psi.RingKey     // in the spec's match.group
	contrib psi.KeyContribution
	seeds   []sharing.Seed // seeds[j] = s_ij, zero for j = i
	workers int
	noise   *noise.Sampler // privacy: the party's noise source (crypto/rand), made on first use

	startedRing   []bool // per match key
	keyed, shared bool
}

// NewHolder prepares party name of spec with its loaded records. It draws
// the per-session secrets (dh scalar, key contribution, mask seeds) and the
// shuffle from crypto/rand. workers bounds the goroutines of token work (0
// means GOMAXPROCS).
func NewHolder(spec *session.Spec, name string, recs Records, workers int) (*Holder, error) {
	idx := spec.PartyIndex(name)
	if idx < 0 {
		return nil, fmt.Errorf("protocol: %q is not a party of session %s", name, spec.ID)
	}
	layout, err := session.NewLayout(spec)
	if err != nil {
		return nil, err
	}
	group := spec.Match.Group
	if group == "" { // keyed mode: the ring key is never used
		group = psi.GroupRistretto255
	}
	dh, err := psi.GenerateRingKey(group)
	if err != nil {
		return nil, err
	}
	contrib, err := psi.GenerateKeyContribution()
	if err != nil {
		return nil, err
	}
	seeds := make([]sharing.Seed, len(spec.Parties))
	for j := range seeds {
		if j == idx {
			continue
		}
		if seeds[j], err = sharing.NewSeed(); err != nil {
			return nil, err
		}
	}
	perm, err := shuffle(recs.Len())
	if err != nil {
		return nil, err
	}
	h := &Holder{spec: spec, layout: layout, name: name, index: idx, recs: recs, perm: perm,
		dh: dh, contrib: contrib, seeds: seeds, workers: workers, keys: max(1, len(spec.MatchKeys()))}
	if spec.CLKSchema() != nil {
		cr, ok := recs.(CLKRecords)
		if !ok {
			return nil, fmt.Errorf("protocol: mode clk needs the records' feature values (CLKRecords)")
		}
		h.clkRecs = cr
	}
	if h.keys > 1 {
		mk, ok := recs.(MultiKeyRecords)
		if !ok || mk.Keys() != h.keys {
			return nil, fmt.Errorf("protocol: the spec has %d match keys; the records must carry each (MultiKeyRecords)", h.keys)
		}
		h.multi = mk
	}
	h.startedRing = make([]bool, h.keys)
	return h, nil
}

// Keys is the number of match keys of the session (1 for match.fields).
func (p *Holder) Keys() int { return p.keys }

// recordIndex is the index of a record in a party's Records (a type of its
// own, not to be mistaken for the []uint32 intersection positions).
type recordIndex uint32

// shuffle returns a uniformly random permutation of [0,n) (Fisher–Yates with
// crypto/rand).
func shuffle(n int) ([]recordIndex, error) {
	if int64(n) > math.MaxUint32 {
		return nil, fmt.Errorf("protocol: %d records is too many", n)
	}
	p := make([]recordIndex, n)
	for i := range p {
		p[i] = recordIndex(i)
	}
	var buf [8]byte
	for i := n - 1; i > 0; i-- {
		// Rejection sampling for an unbiased index in [0, i].
		bound := uint64(i + 1)
		limit := ^uint64(0) - (^uint64(0) % bound)
		var r uint64
		for {
			if _, err := rand.Read(buf[:]); err != nil {
				return nil, fmt.Errorf("protocol: shuffling: %w", err)
			}
			r = binary.LittleEndian.Uint64(buf[:])
			if r < limit {
				break
			}
		}
		j := int(r % bound)
		p[i], p[j] = p[j], p[i]
	}
	return p, nil
}

// Name is the party's name in the spec.
func (p *Holder) Name() string { return p.name }

// Index is the party's index in the spec's parties.
func (p *Holder) Index() int { return p.index }

// SetSize is the number of records the party brings (after de-duplication);
// it is declared to the coordinator at join.
func (p *Holder) SetSize() int { return p.recs.Len() }

// Spec returns the session spec.
func (p *Holder) Spec() *session.Spec { return p.spec }

// StartRing returns H(x)^k_i for the party's records in its secret shuffled
// order: the list it sends into the dh ring.
func (p *Holder) StartRing() ([]psi.Point, error) {
	out := make([]psi.Point, p.SetSize())
	if err := p.StartRingBatch(0, out); err != nil {
		return nil, err
	}
	return out, nil
}

// StartRingBatch computes positions [offset, offset+len(out)) of the list
// that [Holder.StartRing] returns, so that a party can stream its list into
// the ring while computing it. Batches may come in any order but each
// position must be computed once; the first call consumes the round.
func (p *Holder) StartRingBatch(offset int, out []psi.Point) error {
	return p.StartRingBatchKey(0, offset, out)
}

// StartRingBatchKey is [Holder.StartRingBatch] for match key k: each key
// has its own ring list, over the same shuffled order.
func (p *Holder) StartRingBatchKey(k, offset int, out []psi.Point) error {
	if k < 0 || k >= p.keys {
		return fmt.Errorf("protocol: no match key %d", k)
	}
	if offset == 0 {
		if p.startedRing[k] {
			return ErrStateConsumed
		}
		p.startedRing[k] = true
	}
	if offset < 0 || offset+len(out) > len(p.perm) {
		return fmt.Errorf("protocol: ring batch [%d, %d) beyond set size %d", offset, offset+len(out), len(p.perm))
	}
	keys := make([][]byte, min(keyBatch, len(out)))
	var fill []byte
	for lo := 0; lo < len(out); lo += len(keys) {
		batch, f, err := p.shuffledKeys(keys, fill, k, offset+lo, len(out)-lo)
		if err != nil {
			return err
		}
		fill = f
		if err := p.dh.HashAndBlind(p.spec.ID, batch, out[lo:lo+len(batch)], p.workers); err != nil {
			return err
		}
	}
	return nil
}

// keyBatch is how many keys the token rounds gather at a time, so that no
// round holds a list of every record's key.
const keyBatch = 1 << 16

// shuffledKeys fills dst, up to limit entries, with match key k of the
// records at shuffled positions from offset on (shared slices: not copied)
// and returns the filled part. A record without a value for key k gets a
// filler key, fresh from crypto/rand, written into fill (returned for
// reuse): 0x00 then 16 random bytes, which no real key (starting with
// ident.KeyVersion) equals and no other party's filler equals except with
// probability 2^-128, so its token matches nothing and looks like any
// unmatched token to the coordinator.
func (p *Holder) shuffledKeys(dst [][]byte, fill []byte, k, offset, limit int) ([][]byte, []byte, error) {
	dst = dst[:min(len(dst), limit)]
	if p.multi == nil {
		for x := range dst {
			dst[x] = p.recs.Key(int(p.perm[offset+x]))
		}
		return dst, fill, nil
	}
	fill = fill[:0]
	var missing []int
	for x := range dst {
		dst[x] = p.multi.KeyAt(k, int(p.perm[offset+x]))
		if dst[x] == nil {
			missing = append(missing, x)
		}
	}
	if len(missing) > 0 {
		const fillerSize = 17
		if cap(fill) < len(missing)*fillerSize {
			fill = make([]byte, 0, len(missing)*fillerSize)
		}
		fill = fill[:len(missing)*fillerSize]
		if _, err := rand.Read(fill); err != nil {
			return nil, fill, fmt.Errorf("protocol: filler keys: %w", err)
		}
		for m, x := range missing {
			f := fill[m*fillerSize : (m+1)*fillerSize : (m+1)*fillerSize]
			f[0] = 0
			dst[x] = f
		}
	}
	return dst, fill, nil
}

// Hop raises every element of (a batch of) another party's list to the
// party's scalar, preserving order; in may be reused as the output. Invalid
// or identity elements fail the whole batch with psi.ErrInvalidPoint.
func (p *Holder) Hop(in []psi.Point) ([]psi.Point, error) {
	if err := p.dh.Blind(in, in, p.workers); err != nil {
		return nil, fmt.Errorf("protocol: ring hop: %w", err)
	}
	return in, nil
}

// KeyContribution is the party's secret share of the keyed-mode group key,
// to be sealed to every other party.
func (p *Holder) KeyContribution() psi.KeyContribution { return p.contrib }

// KeyedTokens derives the group key from every party's contribution
// (indexed by party; the party's own entry must be its own contribution) and
// returns the party's tokens of its first match key in its shuffled order.
func (p *Holder) KeyedTokens(contribs []psi.KeyContribution) ([]join.Token, error) {
	toks := make([]join.Token, len(p.perm))
	err := p.keyedTokens(contribs, func(key, off int, batch [][psi.TokenSize]byte) {
		if key != 0 {
			return
		}
		for k := range batch {
			toks[off+k] = join.Token(batch[k])
		}
	})
	if err != nil {
		return nil, err
	}
	return toks, nil
}

// keyedTokenBytes returns the tokens of every match key (data[k]), each
// list back to back in one slice, as they go on the wire.
func (p *Holder) keyedTokenBytes(contribs []psi.KeyContribution) ([][]byte, error) {
	if p.clkRecs != nil {
		b, err := p.clkBytes(contribs)
		return [][]byte{b}, err
	}
	data := make([][]byte, p.keys)
	for k := range data {
		data[k] = make([]byte, len(p.perm)*psi.TokenSize)
	}
	err := p.keyedTokens(contribs, func(key, off int, batch [][psi.TokenSize]byte) {
		for k := range batch {
			copy(data[key][(off+k)*psi.TokenSize:], batch[k][:])
		}
	})
	if err != nil {
		return nil, err
	}
	return data, nil
}

// keyedTokens runs the keyed-tokens round, handing the tokens of each
// match key to emit a batch at a time in shuffled order (batch is reused
// after emit returns).
func (p *Holder) keyedTokens(contribs []psi.KeyContribution, emit func(key, off int, batch [][psi.TokenSize]byte)) error {
	g, err := p.groupKey(contribs)
	if err != nil {
		return err
	}
	keys := make([][]byte, min(keyBatch, len(p.perm)))
	out := make([][psi.TokenSize]byte, len(keys))
	var fill []byte
	for key := range p.keys {
		for off := 0; off < len(p.perm); off += len(keys) {
			batch, f, err := p.shuffledKeys(keys, fill, key, off, len(p.perm)-off)
			if err != nil {
				return err
			}
			fill = f
			if err := g.KeyedTokens(p.spec.ID, batch, out[:len(batch)], p.workers); err != nil {
				return err
			}
			emit(key, off, out[:len(batch)])
		}
	}
	return nil
}

// Seed returns s_ij, the seed this party sends (sealed) to party j. The
// seeds can be sent as soon as the session starts.
func (p *Holder) Seed(j int) (sharing.Seed, error) {
	if j < 0 || j >= len(p.seeds) || j == p.index {
		return sharing.Seed{}, fmt.Errorf("protocol: no seed for party %d", j)
	}
	return p.seeds[j], nil
}

// PRGContext is the domain-separation context of the mask key k_ij that
// party i derives from the seed it sends to party j.
func PRGContext(session string, i, j int) []byte {
	return prgContext(session, prgRoundMasked, i, j)
}

// PRG rounds: the domain separation of each pairwise expansion of a seed
// (masked aggregation's keys; oblivious aggregation's pads and masks).
const (
	prgRoundMasked     = 4
	prgRoundObliviousG = 5
	prgRoundObliviousR = 6
)

// prgContext is len(session) ‖ session ‖ round ‖ i ‖ j, big-endian: the
// context of an expansion of the seed party i sent to party j.
func prgContext(sessionID string, round uint32, i, j int) []byte {
	b := make([]byte, 0, len(sessionID)+16)
	b = binary.BigEndian.AppendUint32(b, uint32(len(sessionID)))
	b = append(b, sessionID...)
	b = binary.BigEndian.AppendUint32(b, round)
	b = binary.BigEndian.AppendUint32(b, uint32(i))
	b = binary.BigEndian.AppendUint32(b, uint32(j))
	return b
}

// Local computes x_i: the sum of the party's contributions over its records
// at the given shuffled positions (the coordinator's positions in I).
func (p *Holder) Local(positions []uint32) (sharing.Vector, error) {
	if err := p.checkPositions(positions); err != nil {
		return nil, err
	}
	x := make(sharing.Vector, p.layout.Len())
	for _, pos := range positions {
		ri := int(p.perm[pos])
		get := func(field string) string { return p.recs.Value(ri, field) }
		if err := p.layout.Contribute(p.index, get, x); err != nil {
			return nil, newRecordError(p.recs.ID(ri), err)
		}
	}
	return x, nil
}

// Share computes the party's masked share z_i = x_i + k_ii + Σ_{j≠i} k_ji,
// where k_ii = r_i − Σ_{j≠i} k_ij, from the positions in I, the mask r_i
// dealt by the coordinator and the seeds s_ji received from every other
// party (indexed by party; the party's own entry is ignored). It runs once.
func (p *Holder) Share(positions []uint32, mask sharing.Vector, incoming []sharing.Seed) (sharing.Vector, error) {
	if p.shared {
		return nil, ErrStateConsumed
	}
	L := p.layout.Len()
	if len(mask) != L {
		return nil, fmt.Errorf("protocol: mask has length %d, want %d: %w", len(mask), L, sharing.ErrLengthMismatch)
	}
	if len(incoming) != len(p.spec.Parties) {
		return nil, fmt.Errorf("protocol: %d incoming seeds, want %d", len(incoming), len(p.spec.Parties))
	}
	x, err := p.Local(positions)
	if err != nil {
		return nil, err
	}
	if err := p.addNoise(x); err != nil {
		return nil, err
	}
	p.shared = true
	var out, in []sharing.Vector
	for j := range p.spec.Parties {
		if j == p.index {
			continue
		}
		out = append(out, sharing.Expand(p.seeds[j], PRGContext(p.spec.ID, p.index, j), L))
		in = append(in, sharing.Expand(incoming[j], PRGContext(p.spec.ID, j, p.index), L))
	}
	self, err := sharing.SelfKey(mask, out)
	if err != nil {
		return nil, err
	}
	return sharing.Blind(x, self, in)
}

// Members returns the record_ids of the party's records at the given
// shuffled positions, in file order.
func (p *Holder) Members(positions []uint32) ([]string, error) {
	if err := p.checkPositions(positions); err != nil {
		return nil, err
	}
	idx := make([]int, len(positions))
	for k, pos := range positions {
		idx[k] = int(p.perm[pos])
	}
	slices.Sort(idx)
	ids := make([]string, len(idx))
	for k, ri := range idx {
		ids[k] = p.recs.ID(ri)
	}
	return ids, nil
}

func (p *Holder) checkPositions(positions []uint32) error {
	for k, pos := range positions {
		if int64(pos) >= int64(len(p.perm)) {
			return fmt.Errorf("%w: position %d beyond set size %d", ErrPositions, pos, len(p.perm))
		}
		if k > 0 && pos <= positions[k-1] {
			return fmt.Errorf("%w: not strictly increasing at index %d", ErrPositions, k)
		}
	}
	return nil
}

// OwnResult is the party's copy of the released Result: with reveal:
// membership it adds the record_ids of the party's shared rows, unless |I|
// (their number) is below min_cell, when it sets MembersSuppressed instead.
func (p *Holder) OwnResult(res *session.Result, positions []uint32) (*session.Result, error) {
	r := *res
	switch {
	case !p.spec.Reveals(session.RevealMembership):
	case len(positions) > 0 && len(positions) < p.spec.MinCell:
		// |I| is below min_cell: the list would be a small cell.
		if err := p.checkPositions(positions); err != nil {
			return nil, err
		}
		r.MembersSuppressed = true
	default:
		m, err := p.Members(positions)
		if err != nil {
			return nil, err
		}
		if m == nil {
			m = []string{}
		}
		r.Members = m
	}
	return &r, nil
}

// groupKey checks every party's contribution (indexed by party; the
// party's own entry must be its own) and derives the group key, once per
// session: the keyed tokens or the CLK secret come from it.
func (p *Holder) groupKey(contribs []psi.KeyContribution) (*psi.GroupKey, error) {
	if p.keyed {
		return nil, ErrStateConsumed
	}
	if len(contribs) != len(p.spec.Parties) {
		return nil, fmt.Errorf("%w: have %d, want %d", psi.ErrContributions, len(contribs), len(p.spec.Parties))
	}
	if contribs[p.index] != p.contrib {
		return nil, fmt.Errorf("%w: own contribution altered", psi.ErrContributions)
	}
	g, err := psi.DeriveGroupKey(p.spec.ID, contribs)
	if err != nil {
		return nil, err
	}
	p.keyed = true
	return g, nil
}

// labelCLKSecret derives, from the group key, the secret of the CLK
// encoder (the clkhash schema's HKDF input).
const labelCLKSecret = "mpsi/v1/clk-secret"

// clkBytes derives the group key from every party's contribution and
// returns the CLKs of the party's records in its shuffled order, back to
// back (mode clk). The CLK secret is derived from the group key, which the
// coordinator never sees, so it cannot encode guesses.
func (p *Holder) clkBytes(contribs []psi.KeyContribution) ([]byte, error) {
	g, err := p.groupKey(contribs)
	if err != nil {
		return nil, err
	}
	secret := g.Derive(labelCLKSecret, p.spec.ID)
	defer clear(secret)
	enc, err := clk.NewEncoder(p.spec.CLKSchema(), secret)
	if err != nil {
		return nil, err
	}
	size := p.spec.CLKSchema().Bytes()
	out := make([]byte, 0, len(p.perm)*size)
	rows := make([][]string, min(keyBatch, len(p.perm)))
	for off := 0; off < len(p.perm); off += len(rows) {
		batch := rows[:min(len(rows), len(p.perm)-off)]
		for x := range batch {
			batch[x] = p.clkRecs.CLKRecord(int(p.perm[off+x]))
		}
		clks, err := enc.EncodeAll(context.Background(), batch, p.workers)
		if err != nil {
			// Values were checked when the records loaded; a record the
			// encoder refuses now is named by its position only.
			return nil, fmt.Errorf("protocol: encoding CLKs: %w", err)
		}
		for _, c := range clks {
			out = append(out, c...)
		}
	}
	return out, nil
}
