package linkage_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/bench/cohort"
	"github.com/mpsi-dev/mpsi/bench/linkage"
)

// Mode clk on a small realistic cohort, through the parties' loader:
// every complete group is scored against the truth, and similarity
// linkage finds most of the shared patients without an SSN.
func TestEvaluateCohortCLK(t *testing.T) {
	dir := t.TempDir()
	errs := cohort.DefaultErrors()
	_, err := cohort.GenerateDir(cohort.Config{Seed: 5, Parties: 3, Records: 600, SharedAll: 0.3, SharedPair: 0.1, Noise: true, Realistic: &errs}, dir)
	require.NoError(t, err)
	q, err := linkage.EvaluateCohortCLK(context.Background(), dir, []byte(linkage.CohortCLKSchema), 0.8)
	require.NoError(t, err)
	require.Equal(t, 180, q.Entities)
	require.Greater(t, q.Recall(), 0.85)
	require.Greater(t, q.Precision(), 0.95)
	require.LessOrEqual(t, q.Pure, q.Complete)
}
