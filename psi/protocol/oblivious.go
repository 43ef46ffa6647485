package protocol

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/mpsi-dev/mpsi/internal/envelope"
	"github.com/mpsi-dev/mpsi/sharing"
)

// Oblivious aggregation (doc/DESIGN.md §4): no party learns which of its
// records are shared, with symmetric-key work only.
//
//   - Party i uploads y_i[p] = x_i[p] + Σ_{j≠i} G_ij[p] for EVERY record p
//     of its shuffled list, where G_ij = PRG(s_ij; session, "G", i, j) and
//     s_ij is the mask seed i sealed to j in the token round.
//   - The coordinator, which alone knows each party's 0/1 indicator I_i
//     from the join, adds S_i = Σ_p I_i[p]·y_i[p], and sends every party j
//     the indicators I_i of the OTHER parties (bits over i's secret
//     shuffle: j learns nothing beyond |I|).
//   - Each party checks that every indicator it got has exactly the signed
//     |I| ones (and |I| ≥ min_cell), signs the digests of what it got, and
//     the coordinator relays every party's signed digests to every party:
//     parties that received different indicators of one party abort.
//   - Party j then returns U_j = Σ_{i≠j} Σ_p I_i[p]·G_ij[p] + r_j, with
//     r_j = Σ_{k≠j} R_jk − Σ_{k≠j} R_kj (R_ab = PRG(s_ab; session, "R", a,
//     b)), so Σ_j r_j = 0 and one U_j tells the coordinator nothing.
//   - Σ_i S_i − Σ_j U_j = Σ_i Σ_{p∈I} x_i[p] is released as in masked mode.

// indicatorDigest is the digest a party attests for the indicator of
// party owner: SHA-256 over the session, the owner, the number of
// positions and the packed bits.
func indicatorDigest(sessionID string, owner int, total uint64, packed []byte) []byte {
	h := sha256.New()
	var b []byte
	b = append(b, "mpsi/v1/indicator"...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(sessionID)))
	b = append(b, sessionID...)
	b = binary.BigEndian.AppendUint32(b, uint32(owner))
	b = binary.BigEndian.AppendUint64(b, total)
	h.Write(b)
	h.Write(packed)
	return h.Sum(nil)
}

func bit(packed []byte, p uint64) bool { return packed[p/8]>>(p%8)&1 == 1 }

func popcount(packed []byte) uint64 {
	var n int
	for _, b := range packed {
		n += bits.OnesCount8(b)
	}
	return uint64(n)
}

// coordObl is the coordinator's oblivious-aggregation state.
type coordObl struct {
	L       int
	ind     [][]byte // each party's packed indicator
	next    []uint64 // positions of each party's upload received
	S       []sharing.Vector
	att     []*Attestation
	relayed bool
	U       []sharing.Vector
	word    sharing.Vector // scratch
}

// startOblivious deals every party the other parties' indicators, after
// the tally.
func (c *Coordinator) startOblivious() error {
	L := c.eng.Layout().Len()
	o := &coordObl{L: L, ind: make([][]byte, c.n), next: make([]uint64, c.n), S: make([]sharing.Vector, c.n),
		att: make([]*Attestation, c.n), U: make([]sharing.Vector, c.n), word: make(sharing.Vector, L)}
	for i := range c.n {
		m := c.eng.Size(i)
		o.ind[i] = make([]byte, (m+7)/8)
		for _, p := range c.eng.join.Positions[i] {
			o.ind[i][p/8] |= 1 << (p % 8)
		}
		o.S[i] = make(sharing.Vector, L)
	}
	c.obl = o
	chunk := c.cfg.MaxBatch * 32 // bytes of indicator per batch
	for j := range c.n {
		for i := range c.n {
			if i == j {
				continue
			}
			total := uint64(c.eng.Size(i))
			for off := 0; off < len(o.ind[i]); off += chunk {
				end := min(off+chunk, len(o.ind[i]))
				c.send(j, &Batch{Header: c.header(), Kind: BatchIndicator, Owner: uint32(i), Offset: uint64(off) * 8, Total: total,
					Data: o.ind[i][off:end]})
			}
		}
	}
	c.setRound(RoundUploads)
	return nil
}

// onUpload adds a slice of party i's masked contributions, weighted by its
// indicator.
func (c *Coordinator) onUpload(i int, b *Batch) error {
	o := c.obl
	if o == nil {
		return fmt.Errorf("%w: upload outside oblivious aggregation's upload round", ErrWrongRound)
	}
	size := uint64(c.eng.Size(i))
	w := 8 * o.L
	if b.Owner != uint32(i) || b.Hop != 0 || b.Total != size {
		return fmt.Errorf("%w: upload (owner %d, total %d) on party %d's stream, declared size %d", ErrBadMessage, b.Owner, b.Total, i, size)
	}
	if len(b.Data) == 0 || len(b.Data)%w != 0 || len(b.Data)/w > c.cfg.MaxBatch {
		return fmt.Errorf("%w: upload of %d bytes (limit %d records of %d bytes)", ErrBadMessage, len(b.Data), c.cfg.MaxBatch, w)
	}
	cnt := uint64(len(b.Data) / w)
	if b.Offset != o.next[i] || b.Offset+cnt > size {
		return fmt.Errorf("%w: upload at offset %d, expected %d of %d", ErrBadMessage, b.Offset, o.next[i], size)
	}
	for k := range cnt {
		if !bit(o.ind[i], b.Offset+k) {
			continue
		}
		rec := b.Data[int(k)*w : int(k+1)*w]
		for s := range o.L {
			o.word[s] = binary.LittleEndian.Uint64(rec[8*s:])
		}
		if err := o.S[i].Add(o.word); err != nil {
			return err
		}
	}
	o.next[i] += cnt
	if o.next[i] == size {
		c.emit(Audit{Kind: "party.uploaded", Party: c.spec.Parties[i], Detail: fmt.Sprintf("records=%d", size)})
	}
	return c.maybeUnmask()
}

// onAttestation takes party i's signed digests of the indicators it got;
// once every party's is in, relays them all to every party.
func (c *Coordinator) onAttestation(i int, a *Attestation) error {
	o := c.obl
	if o == nil || o.att[i] != nil {
		return fmt.Errorf("%w: attestation outside the upload round, or twice", ErrWrongRound)
	}
	if a.Party != uint32(i) || len(a.Digests) != 32*c.n {
		return fmt.Errorf("%w: attestation for party %d with %d bytes of digests", ErrBadMessage, a.Party, len(a.Digests))
	}
	o.att[i] = a
	for _, x := range o.att {
		if x == nil {
			return nil
		}
	}
	for _, x := range o.att {
		fwd := *x
		fwd.Header = c.header()
		c.broadcast(&fwd)
	}
	o.relayed = true
	return nil
}

// onUnmask takes party j's unmasking share U_j.
func (c *Coordinator) onUnmask(j int, sh *Share) error {
	o := c.obl
	if !o.relayed || o.U[j] != nil {
		return fmt.Errorf("%w: unmasking share before the attestations were relayed, or twice", ErrWrongRound)
	}
	u, err := sharing.UnmarshalVector(sh.Vector, o.L)
	if err != nil {
		return fmt.Errorf("%w: share: %w", ErrBadMessage, err)
	}
	if len(u) != o.L {
		return fmt.Errorf("%w: share has length %d, want %d", ErrBadMessage, len(u), o.L)
	}
	o.U[j] = u
	return c.maybeUnmask()
}

// maybeUnmask releases Σ S_i − Σ U_j once every upload and share is in.
func (c *Coordinator) maybeUnmask() error {
	o := c.obl
	for i := range c.n {
		if o.next[i] < uint64(c.eng.Size(i)) || o.U[i] == nil {
			return nil
		}
	}
	sum := make(sharing.Vector, o.L)
	for i := range c.n {
		if err := sum.Add(o.S[i]); err != nil {
			return err
		}
		if err := sum.Sub(o.U[i]); err != nil {
			return err
		}
	}
	c.obl = nil
	return c.releaseDecrypted(sum)
}

// partyObl is a party's oblivious-aggregation state.
type partyObl struct {
	ind        [][]byte // the other parties' indicators
	got        []uint64 // positions received of each
	uploadNext int      // next position to upload; -1 when done
	streams    []*sharing.Stream
	att        []*Attestation
	attSent    bool
	unmasked   bool
}

// startOblivious begins the party's upload once the signed tally says an
// aggregate will be released (otherwise nothing is uploaded).
func (p *Party) startOblivious() error {
	o := &partyObl{ind: make([][]byte, p.n), got: make([]uint64, p.n), att: make([]*Attestation, p.n), uploadNext: -1}
	p.obl = o
	if !p.tallyReleasesAggregates() {
		return nil
	}
	o.streams = make([]*sharing.Stream, p.n)
	for j := range p.n {
		if j != p.index {
			o.streams[j] = sharing.NewStream(p.h.seeds[j], prgContext(p.spec.ID, prgRoundObliviousG, p.index, j))
		}
	}
	o.uploadNext = 0
	p.emit(Progress{Phase: "aggregate", Done: 0, Total: 1})
	if p.h.SetSize() == 0 {
		o.uploadNext = -1
	}
	return nil
}

// uploadStep sends the next batch of masked contributions.
func (p *Party) uploadStep() error {
	o := p.obl
	total := p.h.SetSize()
	end := min(o.uploadNext+p.maxBatch, total)
	data, err := p.h.maskedContributions(o.uploadNext, end, o.streams)
	if err != nil {
		return err
	}
	p.send(&Batch{Header: p.header(), Kind: BatchUpload, Owner: uint32(p.index), Offset: uint64(o.uploadNext), Total: uint64(total), Data: data})
	p.emit(Progress{Phase: "upload", Done: end, Total: total})
	o.uploadNext = end
	if end == total {
		o.uploadNext, o.streams = -1, nil
	}
	return nil
}

// onIndicator takes a slice of another party's indicator.
func (p *Party) onIndicator(b *Batch) error {
	o := p.obl
	if o == nil || !p.tallyReleasesAggregates() || o.attSent {
		return fmt.Errorf("%w: indicator outside the upload round (or while the signed tally releases nothing)", ErrWrongRound)
	}
	owner := int(b.Owner)
	if owner >= p.n || owner == p.index {
		return fmt.Errorf("%w: indicator of party %d sent to party %d: a party never receives its own", ErrBadMessage, owner, p.index)
	}
	total := p.roster[owner].SetSize
	if b.Total != total || b.Offset != o.got[owner] || b.Offset%8 != 0 || b.Offset >= total {
		return fmt.Errorf("%w: indicator of %s at %d of %d, expected %d of its declared %d", ErrBadMessage, p.spec.Parties[owner], b.Offset, b.Total, o.got[owner], total)
	}
	cnt := min(uint64(len(b.Data))*8, total-b.Offset)
	if uint64(len(b.Data)) != (cnt+7)/8 || len(b.Data) > p.maxBatch*32 {
		return fmt.Errorf("%w: indicator batch of %d bytes for %d positions", ErrBadMessage, len(b.Data), cnt)
	}
	if cnt%8 != 0 && b.Data[len(b.Data)-1]>>(cnt%8) != 0 {
		return fmt.Errorf("%w: indicator of %s has bits past its declared size", ErrBadMessage, p.spec.Parties[owner])
	}
	if o.ind[owner] == nil {
		o.ind[owner] = make([]byte, 0, min((total+7)/8, uint64(p.maxBatch*32)))
	}
	o.ind[owner] = append(o.ind[owner], b.Data...)
	o.got[owner] += cnt
	for i := range p.n {
		if i != p.index && o.got[i] < p.roster[i].SetSize {
			return nil
		}
	}
	return p.attest()
}

// attest checks every indicator against the signed |I| and signs their
// digests.
func (p *Party) attest() error {
	o := p.obl
	digests := make([]byte, 32*p.n)
	for i := range p.n {
		if i == p.index {
			continue
		}
		if o.ind[i] == nil {
			o.ind[i] = []byte{} // an empty party
		}
		if ones := popcount(o.ind[i]); ones != p.tally.Intersection {
			return fmt.Errorf("%w: the indicator of %s has %d ones, the signed tally says |I| = %d", ErrPositions, p.spec.Parties[i], ones, p.tally.Intersection)
		}
		copy(digests[32*i:], indicatorDigest(p.spec.ID, i, p.roster[i].SetSize, o.ind[i]))
	}
	sig, err := envelope.SignAttestation(p.cfg.Signer, p.spec.ID, uint32(p.index), digests)
	if err != nil {
		return err
	}
	p.send(&Attestation{Header: p.header(), Party: uint32(p.index), Digests: digests, Signature: sig})
	o.attSent = true
	return nil
}

// onAttestation checks a party's signed digests, relayed by the
// coordinator; once all are in and agree, the party unmasks.
func (p *Party) onAttestation(a *Attestation) error {
	o := p.obl
	k := int(a.Party)
	if o == nil || !o.attSent || k >= p.n || o.att[k] != nil {
		return fmt.Errorf("%w: attestation of party %d not expected", ErrWrongRound, a.Party)
	}
	if len(a.Digests) != 32*p.n {
		return fmt.Errorf("%w: attestation of %s has %d bytes of digests", ErrBadMessage, p.spec.Parties[k], len(a.Digests))
	}
	if err := envelope.VerifyAttestation(p.roster[k].Certificate, p.spec.ID, a.Party, a.Digests, a.Signature); err != nil {
		return err
	}
	o.att[k] = a
	for _, x := range o.att {
		if x == nil {
			return nil
		}
	}
	// Every party that received party i's indicator received the same.
	for i := range p.n {
		var first []byte
		for k, x := range o.att {
			if k == i {
				continue
			}
			d := x.Digests[32*i : 32*i+32]
			if first == nil {
				first = d
				continue
			}
			if string(d) != string(first) {
				return fmt.Errorf("%w: %s and %s received different indicators of %s", ErrBadMessage,
					p.spec.Parties[firstOther(i, p.n)], p.spec.Parties[k], p.spec.Parties[i])
			}
		}
	}
	return p.unmask()
}

func firstOther(i, n int) int {
	if i == 0 {
		return min(1, n-1)
	}
	return 0
}

// unmask sends U_j = Σ_{i≠j} Σ_p I_i[p]·G_ij[p] + r_j.
func (p *Party) unmask() error {
	o := p.obl
	L := p.h.layout.Len()
	u := make(sharing.Vector, L)
	block := make(sharing.Vector, L*min(4096, max(1, int(p.tally.Intersection))))
	for i := range p.n {
		if i == p.index {
			continue
		}
		st := sharing.NewStream(p.seeds[i], prgContext(p.spec.ID, prgRoundObliviousG, i, p.index))
		total := p.roster[i].SetSize
		per := uint64(len(block) / L)
		for off := uint64(0); off < total; off += per {
			cnt := min(per, total-off)
			g := block[:int(cnt)*L]
			st.Next(g)
			for k := range cnt {
				if bit(o.ind[i], off+k) {
					for s := range L {
						u[s] += g[int(k)*L+s]
					}
				}
			}
		}
		clear(block)
	}
	// With privacy, the party's noise e enters the released sum through its
	// share: Σ S − Σ U then holds Σ x + Σ e (the coordinator sees only the
	// noised total, as in masked mode).
	e := make(sharing.Vector, L)
	if err := p.h.addNoise(e); err != nil {
		return err
	}
	if err := u.Sub(e); err != nil {
		return err
	}
	clear(e)
	for k := range p.n {
		if k == p.index {
			continue
		}
		out := sharing.Expand(p.h.seeds[k], prgContext(p.spec.ID, prgRoundObliviousR, p.index, k), L)
		in := sharing.Expand(p.seeds[k], prgContext(p.spec.ID, prgRoundObliviousR, k, p.index), L)
		if err := u.Add(out); err != nil {
			return err
		}
		if err := u.Sub(in); err != nil {
			return err
		}
	}
	b, err := u.MarshalBinary()
	if err != nil {
		return err
	}
	p.send(&Share{Header: p.header(), Vector: b})
	o.unmasked = true
	p.emit(Info{Msg: "unmasking share sent"})
	return nil
}

// maskedContributions returns y[p] = x[p] + Σ_j G_j[p] for the records at
// shuffled positions [from, to), L little-endian words each, advancing
// each party's stream (streams[j] nil for the party itself).
func (p *Holder) maskedContributions(from, to int, streams []*sharing.Stream) ([]byte, error) {
	L := p.layout.Len()
	cnt := to - from
	y := make(sharing.Vector, cnt*L)
	for k := range cnt {
		ri := int(p.perm[from+k])
		get := func(field string) string { return p.recs.Value(ri, field) }
		if err := p.layout.Contribute(p.index, get, y[k*L:(k+1)*L]); err != nil {
			return nil, newRecordError(p.recs.ID(ri), err)
		}
	}
	g := make(sharing.Vector, cnt*L)
	for _, st := range streams {
		if st == nil {
			continue
		}
		st.Next(g)
		for k := range y {
			y[k] += g[k]
		}
	}
	clear(g)
	out := make([]byte, 8*len(y))
	for k, v := range y {
		binary.LittleEndian.PutUint64(out[8*k:], v)
	}
	clear(y)
	return out, nil
}
