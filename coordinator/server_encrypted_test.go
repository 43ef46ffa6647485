package coordinator_test

import (
	"context"
	"encoding/json"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/bench/cohort"
	"github.com/mpsi-dev/mpsi/coordinator/store"
	"github.com/mpsi-dev/mpsi/internal/envelope"
	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/psi/protocol"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// encryptedRoundTimeout leaves room for key generation (Profile A) on a
// loaded 2-core machine.
const encryptedRoundTimeout = 30 * time.Second

// canonicalResult is a Result JSON without its session id, for comparing
// sessions that differ only in id or aggregation mode.
func canonicalResult(t testing.TB, b []byte) string {
	t.Helper()
	var r session.Result
	require.NoError(t, json.Unmarshal(b, &r))
	r.Session = ""
	out, err := json.Marshal(&r)
	require.NoError(t, err)
	return string(out)
}

func encrypted(threshold int, dropout string) func(map[string]any) {
	return func(m map[string]any) {
		m["aggregation"] = session.AggregationEncrypted
		if threshold > 0 {
			m["threshold"] = threshold
		}
		if dropout != "" {
			m["dropout"] = dropout
		}
	}
}

// runSpec runs a whole session of honest parties with the given spec edit
// (as runHappy) and returns the released Result JSON; no party's Result
// holds members.
func (h *harness) runSpec(t *testing.T, c *cohort.Cohort, prefix string, edit func(map[string]any)) []byte {
	t.Helper()
	b, outs := h.runSession(t, c, newSessionID(prefix), edit)
	for _, o := range outs {
		require.Nil(t, o.res.Members, "no party learns its shared records in this mode")
	}
	return b
}

// Over the network, aggregation encrypted releases exactly the Result of
// masked aggregation, in both match modes, n-of-n and 2-of-3; no party gets
// positions, masks or members (the client refuses positions and masks in
// this mode, so a completed session proves none were sent).
func TestEncryptedOverNetworkMatchesMasked(t *testing.T) {
	h := newHarnessTimeout(t, encryptedRoundTimeout)
	for _, mode := range []string{session.ModeKeyed, session.ModeDH} {
		c := getCohort(t, mode)
		masked := canonicalResult(t, h.runSpec(t, c, "masked", nil))
		for _, threshold := range []int{0, 2} {
			if mode == session.ModeDH && threshold == 0 {
				continue // the matching mode does not touch step 4; keep the suite short
			}
			got := canonicalResult(t, h.runSpec(t, c, "enc", encrypted(threshold, "")))
			require.Equal(t, masked, got, "mode %s threshold %d", mode, threshold)
		}
	}
}

// Parties vanish (their stream drops without an Abort, as when the process
// dies) at each stage of aggregation encrypted; the session completes or
// aborts as the threshold and the dropout rule say.
func TestEncryptedDropouts(t *testing.T) {
	h := newHarnessTimeout(t, encryptedRoundTimeout)
	c := getCohort(t, session.ModeKeyed)
	full := canonicalResult(t, h.runSpec(t, c, "full", nil))
	// Without hospital-c's contributions: visits summed over a and b only
	// (the other aggregates come from a or b already).
	withoutC := canonicalResult(t, h.runSpec(t, c, "no-c", func(m map[string]any) {
		for _, a := range m["aggregates"].([]any) {
			if a := a.(map[string]any); a["name"] == "visits" {
				a["from"] = []string{"hospital-a", "hospital-b"}
			}
		}
	}))
	var r session.Result
	require.NoError(t, json.Unmarshal([]byte(withoutC), &r))
	require.NotEqual(t, full, withoutC, "the test needs hospital-c's visits to matter")
	r.LeftOut = []string{"hospital-c"}
	b, err := json.Marshal(&r)
	require.NoError(t, err)
	withoutC = string(b)
	// Without hospital-b: visits over a and c, and diabetes (from b only)
	// unavailable, never a value.
	withoutB := canonicalResult(t, h.runSpec(t, c, "no-b", func(m map[string]any) {
		for _, a := range m["aggregates"].([]any) {
			if a := a.(map[string]any); a["name"] == "visits" {
				a["from"] = []string{"hospital-a", "hospital-c"}
			}
		}
	}))
	r = session.Result{}
	require.NoError(t, json.Unmarshal([]byte(withoutB), &r))
	r.LeftOut = []string{"hospital-b"}
	found := false
	for i, a := range r.Aggregates {
		if a.Name == "diabetes" {
			r.Aggregates[i].AggregateResult = session.AggregateResult{Kind: a.Kind, Unavailable: true, Reason: "every contributing party was left out: hospital-b"}
			found = true
		}
	}
	require.True(t, found)
	b, err = json.Marshal(&r)
	require.NoError(t, err)
	withoutB = string(b)
	cases := []struct {
		name      string
		threshold int
		dropout   string
		vanish    map[string]string // party -> stage
		want      string            // canonical Result, or "" for an abort
		abort     []string          // substrings of the abort reason
	}{
		{"after its ciphertexts", 2, "", map[string]string{"hospital-c": protocol.StageCiphertextsSent}, full, nil},
		{"active party during the key switch", 2, "", map[string]string{"hospital-a": protocol.StageKeySwitch}, full, nil},
		{"before its ciphertexts, left out", 2, session.DropoutLeaveOut, map[string]string{"hospital-c": protocol.StagePublicKey}, withoutC, nil},
		{"the only contributor to an aggregate, left out", 2, session.DropoutLeaveOut, map[string]string{"hospital-b": protocol.StagePublicKey}, withoutB, nil},
		{"before its ciphertexts, rule abort", 2, "", map[string]string{"hospital-c": protocol.StagePublicKey}, "", []string{"hospital-c", "before all its ciphertexts were in (dropout rule abort)"}},
		{"before the keys are made", 2, session.DropoutLeaveOut, map[string]string{"hospital-c": protocol.StageKeysSent}, "", []string{"hospital-c"}},
		{"below the threshold", 2, "", map[string]string{"hospital-b": protocol.StageCiphertextsSent, "hospital-c": protocol.StageCiphertextsSent}, "", []string{"only 1 parties remain and the key switch needs 2"}},
		{"n-of-n after its ciphertexts", 0, "", map[string]string{"hospital-c": protocol.StageCiphertextsSent}, "", []string{"hospital-c"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := newSessionID("drop")
			ctx, cancel := context.WithTimeout(context.Background(), 2*encryptedRoundTimeout)
			defer cancel()
			h.create(t, specJSON(t, c, id, encrypted(tc.threshold, tc.dropout)))
			var chs []<-chan outcome
			for _, n := range partyNames {
				stage := tc.vanish[n]
				var hook func(string)
				if stage != "" {
					// The party's session goroutine ends on the spot: its
					// deferred calls close the connection, so the stream
					// drops without an Abort, as if the process died. After
					// "ciphertexts-sent" it first waits until the
					// coordinator has them all (sent is not yet received).
					name := n
					hook = func(s string) {
						if s == stage {
							if s == protocol.StageCiphertextsSent {
								h.waitEvents(t, id, "party.ciphertexts", name)
							}
							runtime.Goexit()
						}
					}
				}
				ch := h.honestStage(ctx, t, c, id, n, hook)
				if stage == "" {
					chs = append(chs, ch)
				}
			}
			outs := collectWithin(t, 2*encryptedRoundTimeout, chs...)
			rec := h.waitFinal(t, id, 2*encryptedRoundTimeout)
			if tc.want == "" {
				require.Equal(t, store.StateAborted, rec.State)
				for _, s := range tc.abort {
					require.Contains(t, rec.Reason, s)
				}
				for _, o := range outs {
					require.Error(t, o.err, o.name)
				}
				return
			}
			require.Equal(t, store.StateCompleted, rec.State, "reason: %s", rec.Reason)
			r := h.result(t, id)
			got := canonicalResult(t, r.GetResultJson())
			require.Equal(t, tc.want, got)
			for _, o := range outs {
				require.NoError(t, o.err, o.name)
			}
		})
	}
}

// A party that keeps sending large messages without reading, while large
// envelopes wait for it, must not wedge its stream once the session is over:
// the coordinator drains what it sends, so its sends end and the stream
// closes (this deadlocked before: both sides blocked sending).
func TestNoDeadlockWhenSessionEndsMidSend(t *testing.T) {
	h := newHarnessTimeout(t, encryptedRoundTimeout)
	c := getCohort(t, session.ModeKeyed)
	id := newSessionID("wedge")
	h.create(t, specJSON(t, c, id, encrypted(2, "")))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var advs []*adversary
	for _, n := range partyNames {
		advs = append(advs, h.join(ctx, t, c, n, id))
	}
	for _, a := range advs {
		a.send(a.readyMsg(h, uint64(a.p.SetSize())))
	}
	for _, a := range advs {
		a.readRoster()
	}
	// b and c send hospital-a 2 MB of (unopenable) threshold-share envelopes,
	// far beyond the stream's flow-control window, which a never reads.
	for _, a := range advs[1:] {
		a.send(&protocol.Envelope{Header: a.hdr(), Round: protocol.EnvelopeThresholdShare, FromParty: uint32(a.idx), To: 0,
			Enc: make([]byte, 32), Ciphertext: make([]byte, envelope.MaxBulkSealed)})
	}
	// a streams 1 MiB chunks of a garbage Galois-key message of the right
	// length (the session aborts when it is complete and does not decode),
	// and then 40 MiB more.
	spec, err := session.ParseSpec(specJSON(t, c, id, encrypted(2, "")))
	require.NoError(t, err)
	largest := 0
	for _, e := range advs[0].roster {
		largest = max(largest, int(e.SetSize))
	}
	params, _, err := protocol.EncryptedParams(spec, largest)
	require.NoError(t, err)
	sizes, err := protocol.SizesOf(params)
	require.NoError(t, err)
	total := uint64(sizes[protocol.MheGaloisShares])
	require.Greater(t, total, uint64(1<<20), "the message must span several chunks")
	sent := make(chan error, 1)
	hdr := advs[0].hdr()
	// send encodes and sends one chunk (on the sending goroutine: no
	// require there).
	send := func(off, n uint64) error {
		b, err := protocol.Encode(&protocol.MheChunk{Header: hdr, Kind: protocol.MheGaloisShares, Offset: off, Total: total, Data: make([]byte, n)})
		if err != nil {
			return err
		}
		return advs[0].stream.Send(advs[0].numbered(b))
	}
	go func() {
		for off := uint64(0); off < total; off += 1 << 20 {
			if err := send(off, min(1<<20, total-off)); err != nil {
				sent <- err
				return
			}
		}
		for k := 0; k < 40; k++ {
			if err := send(0, 1<<20); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	select {
	case <-sent: // finished or refused: either way not wedged
	case <-time.After(30 * time.Second):
		t.Fatal("the party's sends are wedged after the session ended")
	}
	rec := h.waitFinal(t, id, 10*time.Second)
	require.Equal(t, store.StateAborted, rec.State)
	require.Contains(t, rec.Reason, "party hospital-a: "+protocol.ErrBadMessage.Error()+": Galois-key shares",
		"aborted by the garbage message once complete")
}

// Regression for the divergence issue 11 names: a spec with aggregation
// encrypted and nothing to encrypt (cardinality only, no aggregates)
// completed in process but aborted every party over gRPC ("declares no
// aggregates to encrypt"). Both paths now drive the same machines: over
// the network it completes with the in-process Result.
func TestEncryptedWithoutAggregatesOverNetwork(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := getCohort(t, session.ModeKeyed)
	edit := func(m map[string]any) {
		m["aggregation"] = session.AggregationEncrypted
		m["reveal"] = []string{"cardinality"}
		delete(m, "aggregates")
	}
	got := h.runSpec(t, c, "noagg", edit)
	var res session.Result
	require.NoError(t, json.Unmarshal(got, &res))
	require.NotNil(t, res.Intersection)

	spec, err := session.ParseSpec(specJSON(t, c, res.Session, edit))
	require.NoError(t, err)
	var ins []party.Input
	for _, n := range partyNames {
		ins = append(ins, party.Input{Name: n, Records: records(t, c, spec, n)})
	}
	local, err := party.RunLocal(context.Background(), spec, ins, party.Config{})
	require.NoError(t, err)
	want, err := json.Marshal(local.Result)
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(got), "the network releases what RunLocal does")
}
