//go:build unix

package party_test

import (
	"syscall"
	"time"
)

// processCPUTime returns the user+system CPU time of the test process, so
// benchmarks can report CPU cost per operation that is not inflated when
// the machine is shared (wall-clock ns/op is).
func processCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
