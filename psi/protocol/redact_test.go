package protocol

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/internal/envelope"
	"github.com/mpsi-dev/mpsi/psi/ident"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// badRecords is memRecords with one record carrying a bad visits value and
// a record_id that must not leave the party either.
type badRecords struct {
	memRecords
	at    int
	id    string
	value string
}

func (r badRecords) ID(i int) string {
	if i == r.at {
		return r.id
	}
	return r.memRecords.ID(i)
}

func (r badRecords) Value(i int, field string) string {
	if i == r.at && field == "visits" {
		return r.value
	}
	return r.memRecords.Value(i, field)
}

// A record value that cannot contribute (out of range, a date in a number
// field) aborts the session: the party's own error names the record and
// quotes the value with a reference; every byte that leaves the party (its
// frames), and everything the coordinator and the other parties see
// (frames, events, errors), carries the code and the same reference but
// neither the value nor the record id. Masked, encrypted and oblivious
// aggregation.
func TestRecordValuesStayLocal(t *testing.T) {
	cases := []struct{ aggregation, value string }{
		{session.AggregationMasked, "987654"},
		{session.AggregationMasked, "1959-13-28"},
		{session.AggregationEncrypted, "1/15/1901"},
		{session.AggregationOblivious, "66000"},
	}
	for _, tc := range cases {
		t.Run(tc.aggregation+"/"+tc.value, func(t *testing.T) {
			spec := testSpec(t, "redact-"+tc.aggregation, session.ModeKeyed, tc.aggregation, "")
			const secretID = "MRN-SECRET-4711"
			recs := []Records{badRecords{people(0, 10), 4, secretID, tc.value}, people(0, 10), people(0, 10)}
			seen, localErr := runCapturing(t, spec, recs, 0)

			require.Error(t, localErr)
			var r *RedactedError
			require.ErrorAs(t, localErr, &r)
			require.Equal(t, CodeInput, r.Code)
			require.ErrorIs(t, localErr, session.ErrValue)
			require.Contains(t, localErr.Error(), tc.value, "the hospital's own error keeps the detail")
			require.Contains(t, localErr.Error(), secretID)
			require.Contains(t, localErr.Error(), r.Ref)
			require.Contains(t, r.Public, r.Ref)
			require.Contains(t, r.Public, `aggregate "visits"`)

			require.Contains(t, string(seen), r.Ref, "the others see the reference")
			for _, secret := range []string{tc.value, secretID} {
				require.NotContains(t, string(seen), secret)
			}
		})
	}
}

// runCapturing runs the machines in memory and returns every byte that the
// coordinator and the parties other than bad received or emitted (encoded
// frames, event and error texts), and bad's own error.
func runCapturing(t *testing.T, spec *session.Spec, recs []Records, bad int) ([]byte, error) {
	t.Helper()
	ca, get := pki(t)
	coordSigner, coordCert := get("coordinator")
	coord, err := NewCoordinator(spec, CoordinatorConfig{Signer: coordSigner, Name: "coordinator", MaxBatch: 8, Workers: 1})
	require.NoError(t, err)
	defer coord.Close()
	n := len(spec.Parties)
	parties := make([]*Party, n)
	for i, name := range spec.Parties {
		signer, cert := get(name)
		parties[i], err = NewParty(PartyConfig{Session: spec.ID, Name: name, Signer: signer, Roots: ca.Pool(),
			Coordinator: func() *x509.Certificate { return coordCert }, CoordinatorName: "coordinator", Workers: 1})
		require.NoError(t, err)
		parties[i].Events()
		require.NoError(t, coord.Attach(i, cert.Raw))
	}
	var seen bytes.Buffer
	var badErr error
	note := func(i int, err error) {
		if err == nil {
			return
		}
		if i == bad {
			if badErr == nil {
				badErr = err
			}
			return
		}
		fmt.Fprintf(&seen, "%d: %v\n", i, err)
	}
	type frame struct {
		i int
		b []byte
	}
	var toCoord []frame
	toParty := make([][][]byte, n)
	ctx := context.Background()
	for range 100000 {
		moved := false
		for _, ev := range coord.Events() {
			moved = true
			if s, ok := ev.(Send); ok {
				b, err := Encode(s.Msg)
				require.NoError(t, err)
				seen.Write(b)
				toParty[s.To] = append(toParty[s.To], b)
				continue
			}
			fmt.Fprintf(&seen, "coordinator event %#v\n", ev)
		}
		for i, p := range parties {
			for _, ev := range p.Events() {
				moved = true
				if s, ok := ev.(Send); ok {
					b, err := Encode(s.Msg)
					require.NoError(t, err)
					seen.Write(b) // what leaves every party, bad included
					toCoord = append(toCoord, frame{i, b})
				} else if i != bad {
					fmt.Fprintf(&seen, "party %d event %#v\n", i, ev)
				}
			}
			if p.State() == StateOffered {
				moved = true
				note(i, p.Accept(recs[i]))
			}
		}
		for _, f := range toCoord {
			moved = true
			m, err := Decode(f.b)
			require.NoError(t, err)
			if err := coord.Receive(ctx, f.i, m); err != nil {
				fmt.Fprintf(&seen, "coordinator: %v\n", err)
			}
		}
		toCoord = toCoord[:0]
		for i, p := range parties {
			for _, b := range toParty[i] {
				moved = true
				if p.State() == StateDone || p.State() == StateAborted {
					continue
				}
				m, err := Decode(b)
				require.NoError(t, err)
				note(i, p.Receive(m))
			}
			toParty[i] = toParty[i][:0]
		}
		if moved {
			continue
		}
		for i, p := range parties {
			did, err := p.Step()
			note(i, err)
			moved = moved || did
		}
		if !moved {
			break
		}
	}
	var ae *AbortError
	for i, p := range parties {
		if i != bad {
			require.Equal(t, StateAborted, p.State(), "party %d", i)
		}
	}
	require.False(t, errors.As(badErr, &ae), "the bad party aborted on its own record, not on the coordinator's word")
	return seen.Bytes(), badErr
}

// Redact passes the machines' own check errors through, and replaces any
// error that may quote a record, or of unknown origin, by the code and a
// reference the local text repeats.
func TestRedact(t *testing.T) {
	dateErr := fmt.Errorf("line 5: field birth_date: %w %q", ident.ErrBadDate, "1959-13-28")
	cases := []struct {
		name     string
		err      error
		code     Code
		public   bool   // the public reason is the error's text
		contains string // in the public reason
	}{
		{"check", fmt.Errorf("%w: 3 entries for 2 parties", envelope.ErrRoster), CodeRoster, true, "3 entries"},
		{"bad date", dateErr, CodeInput, false, "a record value could not be used"},
		{"date inside a check", fmt.Errorf("%w: %w", ErrBadMessage, dateErr), CodeBadMessage, false, "hospital-a"},
		{"value", newRecordError("MRN-1", &session.ValueError{Aggregate: "age", Field: "age", Err: errors.New(`"1959-13-28" is not a number`)}),
			CodeInput, false, `aggregate "age" (field "age")`},
		{"unknown", errors.New("open /data/1959-13-28.csv: no such file"), CodeInternal, false, "internal error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Redact(CodeUnspecified, "hospital-a", tc.err)
			require.Equal(t, tc.code, r.Code)
			require.ErrorIs(t, r, tc.err)
			require.Contains(t, r.Public, tc.contains)
			if tc.public {
				require.Equal(t, tc.err.Error(), r.Public)
				require.Empty(t, r.Ref)
				return
			}
			require.Regexp(t, `^[0-9a-f]{16}$`, r.Ref)
			require.NotContains(t, r.Public, "1959-13-28")
			require.NotContains(t, r.Public, "MRN-1")
			require.Contains(t, r.Public, "ref "+r.Ref)
			require.Contains(t, r.Error(), "1959-13-28")
			require.Contains(t, r.Error(), r.Ref)
			require.Same(t, r, Redact(CodePolicy, "hospital-a", r), "redacting twice keeps the first")
		})
	}
	require.Nil(t, Redact(CodeInput, "hospital-a", nil))
}
