package protocol_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/psi/join"
	"github.com/mpsi-dev/mpsi/psi/protocol"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// In encrypted aggregation the engine deals no masks (they would lead
// parties to compute on their positions) and starts the encrypted state once.
func TestEngineEncryptedModeGuards(t *testing.T) {
	spec, err := session.ParseSpec([]byte(`{"id":"e","parties":["a","b"],"fields":{"n":"name","v":"number"},
	"match":{"fields":["n"]},"reveal":["aggregates"],"aggregation":"encrypted",
	"aggregates":[{"name":"s","kind":"sum","field":"v","min":0,"max":10}]}`))
	require.NoError(t, err)
	e, err := protocol.NewEngine(spec)
	require.NoError(t, err)
	for i := 0; i < 2; i++ {
		require.NoError(t, e.Declare(i, 1))
		require.NoError(t, e.SetTokens(i, []join.Token{{byte(i)}}))
	}
	_, err = e.Join(context.Background(), 1)
	require.NoError(t, err)
	_, err = e.Masks()
	require.ErrorIs(t, err, protocol.ErrWrongRound)
	_, err = e.StartEncrypted()
	require.NoError(t, err)
	_, err = e.StartEncrypted()
	require.ErrorIs(t, err, protocol.ErrWrongRound)
}

// A share is taken once per party; a replayed share is refused, and no
// Result is released before every share is in.
func TestEngineShareOnce(t *testing.T) {
	spec, err := session.ParseSpec([]byte(`{"id":"e","parties":["a","b"],"fields":{"n":"name","v":"number"},
	"match":{"fields":["n"]},"reveal":["aggregates"],
	"aggregates":[{"name":"s","kind":"sum","field":"v","min":0,"max":10}]}`))
	require.NoError(t, err)
	e, err := protocol.NewEngine(spec)
	require.NoError(t, err)
	for i := 0; i < 2; i++ {
		require.NoError(t, e.Declare(i, 1))
		require.NoError(t, e.SetTokens(i, []join.Token{{1}}))
	}
	_, err = e.Join(context.Background(), 1)
	require.NoError(t, err)
	masks, err := e.Masks()
	require.NoError(t, err)
	require.NoError(t, e.AddShare(0, masks[0]))
	require.ErrorIs(t, e.AddShare(0, masks[0]), protocol.ErrWrongRound)
	_, err = e.Release()
	require.ErrorIs(t, err, protocol.ErrWrongRound)
}
