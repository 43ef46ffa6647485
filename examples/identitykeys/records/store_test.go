package records

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mpsi-dev/mpsi/examples/identitykeys/identity"
	"github.com/stretchr/testify/require"
)

func TestStore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hospital-a.db")
	s, err := OpenStore(ctx, path, "hospital-a")
	require.NoError(t, err)
	ps := Generate(4)
	require.NoError(t, s.Import(ctx, &DB{Hospital: "hospital-a", Patients: ps}))

	// An import with one bad row stores nothing, and the error names the
	// row by position, not by its contents.
	bad := Generate(6)[4:]
	bad[1].Identity.BirthDate = "not a date"
	err = s.Import(ctx, &DB{Hospital: "hospital-a", Patients: bad})
	require.ErrorContains(t, err, "row 2")
	require.NotContains(t, err.Error(), bad[1].Identity.Family)
	require.ErrorIs(t, s.Import(ctx, &DB{Hospital: "hospital-b"}), ErrWrongHospital)
	dup := ps[:1]
	require.ErrorContains(t, s.Import(ctx, &DB{Hospital: "hospital-a", Patients: dup}), "row 1")

	rows, err := s.Rows(ctx)
	require.NoError(t, err)
	require.Len(t, rows, 4)
	for _, r := range rows {
		require.False(t, r.Enrolled)
	}
	c, err := s.Enrol(ctx, ps[2].Identity)
	require.NoError(t, err)
	typed := ps[2].Identity
	typed.Given = "  " + strings.ToUpper(typed.Given)
	c2, err := s.Enrol(ctx, typed)
	require.NoError(t, err, "enrolment normalises the identity")
	require.NotEqual(t, c, c2, "re-enrolment issues a new credential")
	_, err = s.Enrol(ctx, identity.Fields{Given: "No", Family: "One", BirthDate: "1990-01-01", NationalID: "000"})
	require.ErrorIs(t, err, ErrNotPatient)
	n, err := s.EnrolAll(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	n, err = s.EnrolAll(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	require.NoError(t, s.Close())

	// Reopened: rows, conditions and credentials are there.
	s, err = OpenStore(ctx, path, "hospital-a")
	require.NoError(t, err)
	defer s.Close()
	rows, err = s.Rows(ctx)
	require.NoError(t, err)
	conds := 0
	for _, r := range rows {
		require.True(t, r.Enrolled)
		conds += len(r.Patient.Conditions)
		if r.Patient.LocalID == ps[2].LocalID {
			require.Equal(t, c2, r.Cred)
		}
	}
	want := 0
	for _, p := range ps {
		want += len(p.Conditions)
	}
	require.Equal(t, want, conds)
	_, err = OpenStore(ctx, path, "hospital-b")
	require.ErrorIs(t, err, ErrWrongHospital)
}
