package coordinator

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/coordinator/store"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// The coordinator's view refuses early: un-noised aggregates, and the
// session that would take a party past the budget with the same partners;
// other partner sets count separately.
func TestPrivacyBudgetAdmit(t *testing.T) {
	ctx := t.Context()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "mpsi.db"))
	require.NoError(t, err)
	defer st.Close()
	s := &Server{cfg: Config{Store: st, PrivacyBudget: &PrivacyBudget{Epsilon: 1.5, Delta: 1e-6}}}
	mk := func(id, parties, privacy string) *session.Spec {
		sp, err := session.ParseSpec(fmt.Appendf(nil, `{"id":%q,"parties":%s,"fields":{"n":"name","v":"number"},"match":{"fields":["n"]},
"reveal":["aggregates"],"aggregates":[{"name":"v","kind":"sum","field":"v","min":0,"max":10}]%s}`, id, parties, privacy))
		require.NoError(t, err)
		return sp
	}
	create := func(sp *session.Spec) error {
		unlock, err := s.cfg.PrivacyBudget.admit(ctx, s, sp)
		if err != nil {
			return err
		}
		defer unlock()
		return st.CreateSession(ctx, sp.ID, sp.Canonical(), "admin")
	}
	one := `,"privacy":{"epsilon":1,"delta":1e-6}`
	ab, abc := `["a","b"]`, `["a","b","c"]`
	require.ErrorIs(t, create(mk("plain", ab, "")), ErrForbidden)
	require.NoError(t, create(mk("s1", ab, one)))
	require.NoError(t, create(mk("s2", ab, one)))
	err = create(mk("s3", ab, one))
	require.ErrorIs(t, err, ErrForbidden)
	require.ErrorContains(t, err, "privacy budget exceeded")
	require.NoError(t, create(mk("t1", abc, one)), "a, b and c are another partner set")
	var nilBudget *PrivacyBudget
	unlock, err := nilBudget.admit(ctx, s, mk("free", ab, ""))
	require.NoError(t, err)
	unlock()
}
