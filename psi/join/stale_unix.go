//go:build unix

package join

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// staleAge is how old a spill directory without its locked spill file must
// be before it counts as stale: a Spiller creates the file a moment after
// the directory.
const staleAge = time.Minute

// lockSpillFile takes an exclusive advisory lock (flock) on the spill file
// for the Spiller's lifetime; the kernel drops it when the process dies, so
// [RemoveStaleSpillDirs] can tell a crashed Spiller's directory from a live
// one.
func lockSpillFile(f *os.File) error {
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("join: locking spill file: %w", err)
	}
	return nil
}

// RemoveStaleSpillDirs removes the spill directories that Spillers of
// crashed processes left in dir (os.TempDir() when empty): only directories
// named by [SpillDirPattern], owned by this process's user, and whose spill
// file no live Spiller holds locked (one without a spill file must also be
// older than a minute). It returns the directories removed; a directory
// that cannot be removed is reported in the error and the others still go.
func RemoveStaleSpillDirs(dir string) ([]string, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	matches, err := filepath.Glob(filepath.Join(dir, SpillDirPattern))
	if err != nil {
		return nil, fmt.Errorf("join: listing spill directories: %w", err)
	}
	var removed []string
	var errs []error
	for _, d := range matches {
		stale, err := staleSpillDir(d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !stale {
			continue
		}
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, fmt.Errorf("join: removing stale spill directory: %w", err))
			continue
		}
		removed = append(removed, d)
	}
	return removed, errors.Join(errs...)
}

// staleSpillDir reports whether d is a spill directory of ours that no live
// Spiller uses.
func staleSpillDir(d string) (bool, error) {
	fi, err := os.Lstat(d)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil // removed meanwhile
		}
		return false, fmt.Errorf("join: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != os.Getuid() {
		return false, nil // a symlink, a file, or another user's
	}
	f, err := os.Open(filepath.Join(d, "tokens"))
	if errors.Is(err, os.ErrNotExist) {
		return time.Since(fi.ModTime()) > staleAge, nil
	}
	if err != nil {
		return false, fmt.Errorf("join: %w", err)
	}
	defer f.Close()
	switch err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); {
	case err == nil:
		// Nobody holds it: the Spiller's process is gone. Our lock goes
		// with f.
		return true, nil
	case errors.Is(err, syscall.EWOULDBLOCK):
		return false, nil // a live Spiller
	default:
		return false, fmt.Errorf("join: locking %s: %w", f.Name(), err)
	}
}
