package party

import (
	"errors"
	"fmt"
	"time"

	mpsiv1 "github.com/mpsi-dev/mpsi/api/mpsi/v1"
	"github.com/mpsi-dev/mpsi/internal/mhewire"
	"github.com/mpsi-dev/mpsi/sharing/mhe"
)

// Stages of aggregation encrypted reported to [RemoteConfig.Stage].
const (
	// StageKeysSent: the party's key shares (and Shamir shares) are sent.
	StageKeysSent = "keys-sent"
	// StagePublicKey: the collective public key arrived; the party is about
	// to encrypt.
	StagePublicKey = "public-key"
	// StageCiphertextsSent: every ciphertext of the party is sent.
	StageCiphertextsSent = "ciphertexts-sent"
	// StageKeySwitch: a key-switch request naming the party arrived; it is
	// about to answer.
	StageKeySwitch = "key-switch"
)

// encClient is the party's side of aggregation encrypted over the network
// (see the coordinator's encState for the rounds).
type encClient struct {
	ep    *EncryptedParty
	asm   *mhewire.Assembler
	inbox []*mhe.ThresholdShareMsg
	have  []bool // Shamir share received from each party
	ready bool   // threshold setup complete (or no threshold)
	pk    bool   // public key received and ciphertexts sent
	rk    *mhe.RecipientKeyMsg
	rkIdx uint32
	asked uint32 // last key-switch request answered
}

// startEncrypted derives the parameters from the roster, draws the key
// share and sends the key material: CKG share, Galois shares and, with a
// threshold, one sealed Shamir share to every other party.
func (c *client) startEncrypted() error {
	largest := 0
	for _, e := range c.roster {
		largest = max(largest, int(e.GetSetSize()))
	}
	ep, err := c.p.Encrypted(largest)
	if err != nil {
		return err
	}
	params := ep.Params()
	sizes, err := mhewire.SizesOf(params)
	if err != nil {
		return err
	}
	n := len(c.spec.Parties)
	ec := &encClient{ep: ep, have: make([]bool, n), ready: !params.IsThreshold()}
	ec.asm = mhewire.NewAssembler(sizes, func(k mpsiv1.MheKind, idx uint32) error {
		switch k {
		case mpsiv1.MheKind_MHE_KIND_PUBLIC_KEY:
			if ec.pk || idx != 0 {
				return errors.New("public key sent twice")
			}
		case mpsiv1.MheKind_MHE_KIND_RECIPIENT_KEY, mpsiv1.MheKind_MHE_KIND_PCKS_REQUEST:
			if !ec.pk || idx <= ec.asked {
				return fmt.Errorf("%v %d out of order", k, idx)
			}
		default:
			return fmt.Errorf("%v is not sent by the coordinator", k)
		}
		return nil
	})
	c.enc = ec
	ckg, err := ep.GenCKGShare()
	if err != nil {
		return err
	}
	if err := c.sendMhe(mpsiv1.MheKind_MHE_KIND_CKG_SHARE, 0, ckg); err != nil {
		return err
	}
	gkg, err := ep.GenGaloisShares()
	if err != nil {
		return err
	}
	if err := c.sendMhe(mpsiv1.MheKind_MHE_KIND_GALOIS_SHARES, 0, gkg); err != nil {
		return err
	}
	if params.IsThreshold() {
		shares, err := ep.GenThresholdShares()
		if err != nil {
			return err
		}
		for _, s := range shares {
			b, err := s.MarshalBinary() // SECRET: sealed to its addressee
			if err != nil {
				return err
			}
			to := int(s.To)
			enc, ct, err := sealBulk(c, mpsiv1.Round_ROUND_THRESHOLD_SHARE, to, b)
			clear(b)
			if err != nil {
				return err
			}
			if err := c.sendEnvelope(mpsiv1.Round_ROUND_THRESHOLD_SHARE, to, enc, ct); err != nil {
				return err
			}
		}
	}
	c.log.Info("encryption keys sent", "N", params.N(), "threshold", params.Threshold())
	c.stage(StageKeysSent)
	return nil
}

// onThresholdShare takes another party's opened Shamir share.
func (c *client) onThresholdShare(from int, pt []byte) error {
	ec := c.enc
	if ec == nil || ec.ready || ec.have[from] {
		return fmt.Errorf("party: threshold share from %s not expected", c.spec.Parties[from])
	}
	m := ec.ep.Params().NewThresholdShareMsg()
	err := m.UnmarshalBinary(pt)
	clear(pt)
	if err != nil {
		return fmt.Errorf("party: threshold share from %s: %w", c.spec.Parties[from], err)
	}
	if int(m.From) != from || int(m.To) != c.p.Index() {
		return fmt.Errorf("party: threshold share from %s is addressed from %d to %d", c.spec.Parties[from], m.From, m.To)
	}
	ec.have[from] = true
	ec.inbox = append(ec.inbox, m)
	if len(ec.inbox) < len(c.spec.Parties)-1 {
		return nil
	}
	if err := ec.ep.AggregateThresholdShares(ec.inbox); err != nil {
		return err
	}
	ec.inbox, ec.ready = nil, true
	return nil
}

// onMhe takes a chunk from the coordinator; complete messages are acted
// on: the public key (encrypt and send every ciphertext), the recipient's
// key, and key-switch requests.
func (c *client) onMhe(m *mpsiv1.MheChunk) error {
	ec := c.enc
	if ec == nil {
		return errors.New("party: encrypted-aggregation message in a masked session")
	}
	b, done, err := ec.asm.Add(m)
	if err != nil {
		return fmt.Errorf("party: coordinator: %w", err)
	}
	if !done {
		return nil
	}
	params := ec.ep.Params()
	switch m.GetKind() {
	case mpsiv1.MheKind_MHE_KIND_PUBLIC_KEY:
		if !ec.ready {
			return errors.New("party: public key before every threshold share arrived")
		}
		pk := params.NewPublicKeyMsg()
		if err := pk.UnmarshalBinary(b); err != nil {
			return fmt.Errorf("party: collective public key: %w", err)
		}
		c.st.Ring = time.Since(c.ringStart)
		c.aggStart = time.Now()
		c.stage(StagePublicKey)
		ec.pk = true
		total := params.CiphertextCount(c.p.SetSize())
		sent := 0
		err := ec.ep.EncryptContributionsFunc(pk, func(ct *mhe.CiphertextMsg) error {
			if err := c.sendMhe(mpsiv1.MheKind_MHE_KIND_CIPHERTEXT, ct.Index, ct); err != nil {
				return err
			}
			sent++
			c.progress("ciphertexts", sent, total)
			return nil
		})
		if err != nil {
			return err
		}
		c.log.Info("ciphertexts sent", "ciphertexts", sent, "records", c.p.SetSize())
		c.stage(StageCiphertextsSent)
	case mpsiv1.MheKind_MHE_KIND_RECIPIENT_KEY:
		rk := params.NewRecipientKeyMsg()
		if err := rk.UnmarshalBinary(b); err != nil {
			return fmt.Errorf("party: recipient key: %w", err)
		}
		ec.rk, ec.rkIdx = rk, m.GetIndex()
	case mpsiv1.MheKind_MHE_KIND_PCKS_REQUEST:
		if ec.rk == nil || ec.rkIdx != m.GetIndex() {
			return errors.New("party: key-switch request without the recipient's key")
		}
		req := params.NewPCKSRequestMsg()
		if err := req.UnmarshalBinary(b); err != nil {
			return fmt.Errorf("party: key-switch request: %w", err)
		}
		ec.asked = m.GetIndex()
		c.stage(StageKeySwitch)
		share, err := ec.ep.GenPCKSShare(req, ec.rk)
		if err != nil {
			return err
		}
		if err := c.sendMhe(mpsiv1.MheKind_MHE_KIND_PCKS_SHARE, m.GetIndex(), share); err != nil {
			return err
		}
		c.log.Info("key-switch share sent", "request", m.GetIndex())
	}
	return nil
}

// sendMhe sends one encoded message in chunks.
func (c *client) sendMhe(kind mpsiv1.MheKind, index uint32, m interface{ MarshalBinary() ([]byte, error) }) error {
	b, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	for _, ch := range mhewire.Split(kind, index, b) {
		if err := c.send(&mpsiv1.PartyMessage{Msg: &mpsiv1.PartyMessage_Mhe{Mhe: ch}}); err != nil {
			return err
		}
	}
	return nil
}

// stage reports a stage to the Stage hook.
func (c *client) stage(s string) {
	if c.cfg.Stage != nil {
		c.cfg.Stage(s)
	}
}
