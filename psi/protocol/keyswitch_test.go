package protocol

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/psi/session"
)

// A compromised coordinator cannot have a ciphertext of its choice, or the
// same one twice, switched to its key: the parties answer one request per
// session for one ciphertext, re-requests only for a dropout.
func TestKeySwitchIsBounded(t *testing.T) {
	recs := func() []Records { return []Records{people(0, 40), people(10, 50), people(12, 52)} }
	t.Run("honest session releases", func(t *testing.T) {
		spec := testSpec(t, "ks-ok", session.ModeKeyed, session.AggregationEncrypted, "")
		tn := newTestNet(t, spec, recs(), -1)
		require.NotNil(t, tn.released, "errs %v, aborted %+v", tn.errs, tn.aborted)
	})
	t.Run("a second request without a dropout", func(t *testing.T) {
		spec := testSpec(t, "ks-again", session.ModeKeyed, session.AggregationEncrypted, `,"threshold":2`)
		var chunks []Message
		tamper := func(to int, m Message) []Message {
			if c, ok := m.(*MheChunk); ok && to == 0 && (c.Kind == MheRecipientKey || c.Kind == MhePCKSRequest) {
				chunks = append(chunks, m)
				if c.Kind == MhePCKSRequest && c.Offset+uint64(len(c.Data)) == c.Total && len(chunks) < 100 {
					// Replay the whole request as number 2.
					out := []Message{m}
					for _, x := range chunks {
						d := *(x.(*MheChunk))
						d.Index = 2
						out = append(out, &d)
					}
					return out
				}
			}
			return []Message{m}
		}
		tn := newTestNetTampered(t, spec, recs(), tamper)
		require.Nil(t, tn.released, "nothing may be released")
		require.ErrorIs(t, tn.errs[0], ErrKeySwitch)
		require.ErrorContains(t, tn.errs[0], "re-request without a dropout")
		require.NotNil(t, tn.aborted)
	})
}

// newTestNetTampered is newTestNet (all parties honest) with the
// coordinator's messages to the parties passed through tamper.
func newTestNetTampered(t testing.TB, spec *session.Spec, recs []Records, tamper func(int, Message) []Message) *testNet {
	t.Helper()
	return newTestNet(t, spec, recs, -1, func(tn *testNet) { tn.tamper = tamper })
}
