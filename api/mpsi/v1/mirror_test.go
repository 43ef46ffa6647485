package mpsiv1_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	mpsiv1 "github.com/mpsi-dev/mpsi/api/mpsi/v1"
	"github.com/mpsi-dev/mpsi/psi/protocol"
)

// The .proto's enums mirror the protocol package's constants (which own
// the numbers): a change to one without the other fails here.
func TestEnumsMirrorProtocol(t *testing.T) {
	require.EqualValues(t, protocol.EnvelopeKeyContribution, mpsiv1.Round_ROUND_KEY_CONTRIBUTION)
	require.EqualValues(t, protocol.EnvelopeMaskSeed, mpsiv1.Round_ROUND_MASK_SEED)
	require.EqualValues(t, protocol.EnvelopeThresholdShare, mpsiv1.Round_ROUND_THRESHOLD_SHARE)
	require.EqualValues(t, protocol.EnvelopeRingKey, mpsiv1.Round_ROUND_RING_KEY)
	types := map[protocol.Type]mpsiv1.MessageType{
		protocol.TypeHello: mpsiv1.MessageType_MESSAGE_TYPE_HELLO, protocol.TypeWelcome: mpsiv1.MessageType_MESSAGE_TYPE_WELCOME,
		protocol.TypeReady: mpsiv1.MessageType_MESSAGE_TYPE_READY, protocol.TypeRoster: mpsiv1.MessageType_MESSAGE_TYPE_ROSTER,
		protocol.TypeEnvelope: mpsiv1.MessageType_MESSAGE_TYPE_ENVELOPE, protocol.TypeBatch: mpsiv1.MessageType_MESSAGE_TYPE_BATCH,
		protocol.TypeMaskDeal: mpsiv1.MessageType_MESSAGE_TYPE_MASK_DEAL, protocol.TypeShare: mpsiv1.MessageType_MESSAGE_TYPE_SHARE,
		protocol.TypeMhe: mpsiv1.MessageType_MESSAGE_TYPE_MHE_CHUNK, protocol.TypeAbort: mpsiv1.MessageType_MESSAGE_TYPE_ABORT,
		protocol.TypeResult: mpsiv1.MessageType_MESSAGE_TYPE_RESULT, protocol.TypeTally: mpsiv1.MessageType_MESSAGE_TYPE_TALLY,
		protocol.TypeAttest: mpsiv1.MessageType_MESSAGE_TYPE_ATTESTATION, protocol.TypeCredit: mpsiv1.MessageType_MESSAGE_TYPE_CREDIT,
	}
	require.Len(t, mpsiv1.MessageType_name, len(types)+1, "every message type is mirrored")
	for pt, mt := range types {
		require.EqualValues(t, pt, mt, pt.String())
	}
}
