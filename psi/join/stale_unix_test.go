//go:build unix

package join_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mpsi-dev/mpsi/psi/join"
)

// crashEnv, when set, makes the test binary open a Spiller in that
// directory and exit without closing it, as a crashed coordinator would.
const crashEnv = "MPSI_TEST_SPILL_CRASH_DIR"

func TestSpillerCrashHelper(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		return // only a helper process for TestRemoveStaleSpillDirs
	}
	if _, err := join.NewSpiller([]int{4, 4}, join.SpillOptions{Dir: dir, Budget: 1 << 20}); err != nil {
		os.Exit(3)
	}
	os.Exit(0)
}

func TestRemoveStaleSpillDirs(t *testing.T) {
	dir := t.TempDir()

	// A Spiller of a process that died without closing it.
	cmd := exec.Command(os.Args[0], "-test.run=^TestSpillerCrashHelper$")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("crash helper: %v\n%s", err, out)
	}
	crashed, err := filepath.Glob(filepath.Join(dir, join.SpillDirPattern))
	if err != nil || len(crashed) != 1 {
		t.Fatalf("crash helper left %v, %v; want one spill directory", crashed, err)
	}

	// A live Spiller of this process.
	live, err := join.NewSpiller([]int{4, 4}, join.SpillOptions{Dir: dir, Budget: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()

	mk := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// Not ours by name.
	other := mk("someone-elses-dir")
	// Ours by name but without a spill file: young (a Spiller being made)
	// and old (a crash before the file was made).
	young := mk("mpsi-join-spill-young")
	old := mk("mpsi-join-spill-old")
	past := time.Now().Add(-time.Hour)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}
	// Ours by name, another user's (only root can make one).
	var foreign string
	if os.Getuid() == 0 {
		foreign = mk("mpsi-join-spill-foreign")
		if err := os.Chtimes(foreign, past, past); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(foreign, 12345, 12345); err != nil {
			t.Fatal(err)
		}
	}
	// A symlink with our name pointing elsewhere.
	target := t.TempDir()
	link := filepath.Join(dir, "mpsi-join-spill-link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}

	removed, err := join.RemoveStaleSpillDirs(dir)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	want := []string{old, crashed[0]}
	slices.Sort(want)
	if !slices.Equal(removed, want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	for _, p := range append([]string{other, young, link, target}, foreign) {
		if p == "" {
			continue
		}
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s should remain: %v", p, err)
		}
	}
	for _, p := range want {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s should be gone: %v", p, err)
		}
	}
	// The live Spiller still works and cleans up after itself.
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
}
