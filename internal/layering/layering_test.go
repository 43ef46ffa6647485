package layering_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/mpsi-dev/mpsi/"

// list returns the imports (direct) or dependencies (transitive) of pkg,
// as `go list` reports them for the build (tests excluded).
func list(t *testing.T, pkg string, transitive bool) []string {
	t.Helper()
	format := "{{join .Imports \"\\n\"}}"
	args := []string{"list", "-f", format, module + pkg}
	if transitive {
		args = []string{"list", "-deps", module + pkg}
	}
	out, err := exec.Command("go", args...).Output()
	require.NoError(t, err, "go %s", strings.Join(args, " "))
	return strings.Fields(string(out))
}

func TestImportRules(t *testing.T) {
	rules := []struct {
		pkg        string
		transitive bool
		forbidden  []string // exact paths, or prefixes ending in "/"
	}{
		// The protocol core: no transport, network, store or metrics.
		{"psi/protocol", false, []string{"net", "net/http", "google.golang.org/grpc/", "google.golang.org/grpc", "google.golang.org/protobuf/"}},
		{"psi/protocol", true, []string{"google.golang.org/grpc", "github.com/prometheus/", "modernc.org/sqlite", module + "coordinator", module + "party", module + "api/"}},
		// The hospital's library links no coordinator, store or metrics.
		{"party", true, []string{module + "coordinator", module + "coordinator/store", "modernc.org/sqlite", "github.com/prometheus/"}},
		// The coordinator service does not link the hospital's library.
		{"coordinator", true, []string{module + "party"}},
	}
	for _, r := range rules {
		deps := list(t, r.pkg, r.transitive)
		for _, d := range deps {
			for _, f := range r.forbidden {
				bad := d == f || (strings.HasSuffix(f, "/") && strings.HasPrefix(d, f))
				require.False(t, bad, "%s imports %s (transitive: %v): forbidden by the layering rules", r.pkg, d, r.transitive)
			}
		}
	}
}

// The rule test must be able to fail: a package known to import grpc is
// seen to.
func TestImportRulesSeeImports(t *testing.T) {
	require.Contains(t, list(t, "coordinator", false), "google.golang.org/grpc")
	require.Contains(t, list(t, "party", true), module+"psi/protocol")
}
