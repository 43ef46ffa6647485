//go:build !unix

package party_test

import "time"

// processCPUTime is unavailable on this platform; benchmarks then skip the
// cpu-ns/op metric.
func processCPUTime() time.Duration { return 0 }
