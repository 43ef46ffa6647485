package coordinator_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	mpsiv1 "github.com/mpsi-dev/mpsi/api/mpsi/v1"
	"github.com/mpsi-dev/mpsi/coordinator"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// With MaxSessions and MaxStreams set, the call beyond the cap is refused
// at once with ResourceExhausted; a slot freed is usable again.
func TestAdmissionCaps(t *testing.T) {
	h := newHarnessTimeout(t, testRoundTimeout, func(c *coordinator.Config) { c.MaxSessions, c.MaxStreams = 1, 1 })
	c := getCohort(t, session.ModeDH)
	ctx := context.Background()

	first := h.create(t, specJSON(t, c, newSessionID("cap-1"), nil))
	_, err := h.client(t, "admin").CreateSession(ctx, &mpsiv1.CreateSessionRequest{SpecJson: specJSON(t, c, newSessionID("cap-2"), nil)})
	requireStatus(t, err, codes.ResourceExhausted, "--max-sessions")

	a := h.join(ctx, t, c, "hospital-a", first) // holds the one stream
	stream, err := h.client(t, "hospital-b").Run(ctx)
	require.NoError(t, err)
	requireStatus(t, recvStatus(stream), codes.ResourceExhausted, "--max-streams")

	// hospital-a leaves: the session aborts and both slots free up.
	a.cancel()
	h.waitFinal(t, first, time.Minute)
	require.Eventually(t, func() bool {
		_, err := h.client(t, "admin").CreateSession(ctx, &mpsiv1.CreateSessionRequest{SpecJson: specJSON(t, c, newSessionID("cap-3"), nil)})
		return err == nil
	}, time.Minute, 20*time.Millisecond, "no session slot after the first session ended")
}

func TestCheckCertificate(t *testing.T) {
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	cert := func(from, to time.Time) []*x509.Certificate {
		return []*x509.Certificate{{Subject: pkix.Name{CommonName: "coordinator"}, NotBefore: from, NotAfter: to}}
	}
	day := 24 * time.Hour
	for _, tc := range []struct {
		name       string
		chain      []*x509.Certificate
		allow      bool
		wantErr    string
		wantLog    string
		wantNoLogs bool
	}{
		{"valid", cert(now.Add(-day), now.Add(90*day)), false, "", "", true},
		{"expires soon", cert(now.Add(-day), now.Add(3*day)), false, "", "certificate expires soon", false},
		{"expired", cert(now.Add(-9*day), now.Add(-day)), false, "expired at 2026-12-06", "", false},
		{"not yet valid", cert(now.Add(day), now.Add(9*day)), false, "is valid from 2026-12-08", "", false},
		{"expired, allowed", cert(now.Add(-9*day), now.Add(-day)), true, "", "serving with an invalid certificate", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := coordinator.CheckCertificate(context.Background(), tc.chain, now, tc.allow, slog.New(slog.NewTextHandler(&buf, nil)))
			if tc.wantErr != "" {
				require.ErrorIs(t, err, coordinator.ErrCertificateValidity)
				require.Contains(t, err.Error(), tc.wantErr)
			} else {
				require.NoError(t, err)
			}
			if tc.wantLog != "" {
				require.Contains(t, buf.String(), tc.wantLog)
			}
			if tc.wantNoLogs {
				require.Empty(t, strings.TrimSpace(buf.String()))
			}
		})
	}
}
