package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// readmeBlocks returns README.md's fenced code blocks of a language.
func readmeBlocks(t *testing.T, lang string) []string {
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	re := regexp.MustCompile("(?ms)^ *```" + lang + "\n(.*?)^ *```")
	var out []string
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		out = append(out, m[1])
	}
	return out
}

// README's example policy accepts README's example spec.
func TestREADMEPolicyAcceptsSpec(t *testing.T) {
	var spec *session.Spec
	var policy string
	for _, b := range readmeBlocks(t, "json") {
		if strings.Contains(b, `"allowed_fields"`) {
			policy = b
		}
		if strings.Contains(b, `"min_cell"`) && strings.Contains(b, `"match"`) {
			var err error
			spec, err = session.ParseSpec([]byte(b))
			require.NoError(t, err, "README's spec")
		}
	}
	require.NotNil(t, spec, "README has an example spec")
	require.NotEmpty(t, policy, "README has an example policy")
	path := filepath.Join(t.TempDir(), "policy.json")
	require.NoError(t, os.WriteFile(path, []byte(policy), 0o644))
	p, err := party.LoadPolicy(path)
	require.NoError(t, err)
	require.NoError(t, p.Check(spec))
}

// Every ./mpsi command line of README's walk-through names a command and
// flags that exist.
func TestREADMECommandsExist(t *testing.T) {
	n := 0
	for _, b := range readmeBlocks(t, "sh") {
		text := strings.ReplaceAll(b, "\\\n", " ")
		for _, line := range strings.Split(text, "\n") {
			line = strings.TrimSpace(line)
			if !strings.HasPrefix(line, "./mpsi ") {
				continue
			}
			if i := strings.IndexAny(line, "&>#|"); i >= 0 {
				line = line[:i]
			}
			f := strings.Fields(line)[1:]
			var cmd []string
			for _, w := range f {
				if strings.HasPrefix(w, "-") {
					break
				}
				cmd = append(cmd, w)
			}
			if len(cmd) > 2 || (len(cmd) == 2 && cmd[0] != "session" && cmd[0] != "audit") {
				cmd = cmd[:1] // a positional argument (mpsi report RESULT.json)
			}
			out, errs, code := runIn(t, append(cmd, "-h")...)
			require.Equal(t, 0, code, "%q: %s", line, errs)
			for _, w := range f {
				if strings.HasPrefix(w, "--") {
					require.Contains(t, out, "\n    "+w+" ", "%q: flag %s", line, w)
				}
			}
			n++
		}
	}
	require.GreaterOrEqual(t, n, 9, "README's walk-through commands were found")
}
