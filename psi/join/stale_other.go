//go:build !unix

package join

import "os"

// lockSpillFile does nothing where flock is not available.
func lockSpillFile(*os.File) error { return nil }

// RemoveStaleSpillDirs removes nothing where flock is not available: a live
// Spiller's directory could not be told from a crashed one's.
func RemoveStaleSpillDirs(string) ([]string, error) { return nil, nil }
