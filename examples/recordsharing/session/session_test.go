package session_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/examples/recordsharing/protocol"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/session"
)

// pair agrees a session and returns the app's and the access layer's ends.
func pair(t testing.TB, id protocol.SessionID) (app, acc *session.Session) {
	t.Helper()
	in, err := session.NewInitiator()
	require.NoError(t, err)
	acc, g, err := session.Grant(in.PublicKey(), id, time.Now())
	require.NoError(t, err)
	app, err = in.Finish(g)
	require.NoError(t, err)
	return app, acc
}

func TestRoundTrip(t *testing.T) {
	app, acc := pair(t, protocol.SessionID{1})
	require.Equal(t, app.ID(), acc.ID())
	for _, msg := range [][]byte{{}, []byte("request"), bytes.Repeat([]byte{7}, 1<<20)} {
		n, ct, err := app.Seal(msg)
		require.NoError(t, err)
		require.False(t, len(msg) > 16 && bytes.Contains(ct, msg[:16]), "ciphertext contains plaintext")
		got, err := acc.Open(n, ct)
		require.NoError(t, err)
		require.True(t, bytes.Equal(msg, got))

		n, ct, err = acc.Seal(msg)
		require.NoError(t, err)
		got, err = app.Open(n, ct)
		require.NoError(t, err)
		require.True(t, bytes.Equal(msg, got))
	}
}

func TestOpenRefuses(t *testing.T) {
	app, acc := pair(t, protocol.SessionID{1})
	_, otherAcc := pair(t, protocol.SessionID{1}) // same id, other key
	n, ct, err := app.Seal([]byte("view record"))
	require.NoError(t, err)
	flip := func(b []byte, i int) []byte { c := bytes.Clone(b); c[i] ^= 1; return c }
	tests := []struct {
		name   string
		s      *session.Session
		nonce  []byte
		cipher []byte
	}{
		{"reflected back to the sender", app, n, ct},
		{"other session key", otherAcc, n, ct},
		{"ciphertext altered", acc, n, flip(ct, 0)},
		{"tag altered", acc, n, flip(ct, len(ct)-1)},
		{"nonce altered", acc, flip(n, 0), ct},
		{"nonce short", acc, n[:11], ct},
		{"nonce missing", acc, nil, ct},
		{"ciphertext truncated", acc, n, ct[:len(ct)-1]},
		{"ciphertext empty", acc, n, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.s.Open(tc.nonce, tc.cipher)
			require.ErrorIs(t, err, session.ErrOpen)
		})
	}
}

func TestFinish(t *testing.T) {
	in, err := session.NewInitiator()
	require.NoError(t, err)
	other, err := session.NewInitiator()
	require.NoError(t, err)
	id := protocol.SessionID{3}
	_, gOther, err := session.Grant(other.PublicKey(), id, time.Now())
	require.NoError(t, err)
	_, g, err := session.Grant(in.PublicKey(), id, time.Now())
	require.NoError(t, err)

	t.Run("grant for another temporary key", func(t *testing.T) {
		in2, err := session.NewInitiator()
		require.NoError(t, err)
		_, err = in2.Finish(gOther)
		require.ErrorIs(t, err, session.ErrOpen)
		// The temporary key is destroyed even after a failure.
		_, err = in2.Finish(gOther)
		require.ErrorIs(t, err, session.ErrConsumed)
	})
	t.Run("altered sealed key", func(t *testing.T) {
		in3, err := session.NewInitiator()
		require.NoError(t, err)
		_, g3, err := session.Grant(in3.PublicKey(), id, time.Now())
		require.NoError(t, err)
		g3.SealedKey[0] ^= 1
		_, err = in3.Finish(g3)
		require.ErrorIs(t, err, session.ErrOpen)
	})
	t.Run("other session id", func(t *testing.T) {
		in4, err := session.NewInitiator()
		require.NoError(t, err)
		_, g4, err := session.Grant(in4.PublicKey(), id, time.Now())
		require.NoError(t, err)
		g4.Session = protocol.SessionID{4}
		_, err = in4.Finish(g4)
		require.ErrorIs(t, err, session.ErrOpen)
	})
	t.Run("single use", func(t *testing.T) {
		_, err := in.Finish(g)
		require.NoError(t, err)
		_, err = in.Finish(g)
		require.ErrorIs(t, err, session.ErrConsumed)
	})
	t.Run("malformed temporary key", func(t *testing.T) {
		for _, pk := range [][]byte{nil, {1, 2, 3}, make([]byte, 33)} {
			_, _, err := session.Grant(pk, id, time.Now())
			require.ErrorIs(t, err, protocol.ErrMalformed)
		}
	})
}

// FuzzOpen checks that Open never panics and never accepts forged input.
func FuzzOpen(f *testing.F) {
	app, acc := pair(f, protocol.SessionID{9})
	n, ct, err := app.Seal([]byte("seed"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(n, ct)
	f.Add([]byte{}, []byte{})
	f.Add(make([]byte, 12), make([]byte, 16))
	f.Fuzz(func(t *testing.T, nonce, ciphertext []byte) {
		pt, err := acc.Open(nonce, ciphertext)
		if err == nil && !(bytes.Equal(nonce, n) && bytes.Equal(ciphertext, ct)) {
			t.Fatalf("Open accepted a forged payload: %x", pt)
		}
	})
}
