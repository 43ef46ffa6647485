package psi

import (
	"runtime"
	"testing"
	"time"

	"github.com/cloudflare/circl/dh/x25519"
	"golang.org/x/sys/unix"
)

// BenchmarkDHSuites measures both dh suites and their floors interleaved
// in every iteration (so machine load hits all alike), on one locked OS
// thread timed by its own CPU clock, over a batch: the x25519 hop (X25519Key.Blind: canonical check, circl ladder,
// low-order check), circl's raw x25519.Shared on the same inputs, the
// ristretto255 hop (DHKey.Blind) and each suite's first hop
// (HashAndBlind). It reports µs per element and the ratios
// hop/raw (aim ≤ 1.1) and ristretto255 hop / x25519 hop.
func BenchmarkDHSuites(b *testing.B) {
	const batch = 256
	ks := keys(batch, "given=jose|family=alvarez|dob=1970-01-01|sex=M|")
	xk, rk := x25519KeyFromSeed("hop"), dhKeyFromSeed("hop")
	xin, rin := make([]Point, batch), make([]Point, batch)
	if err := x25519KeyFromSeed("owner").HashAndBlind("bench", ks, xin, 1); err != nil {
		b.Fatal(err)
	}
	if err := dhKeyFromSeed("owner").HashAndBlind("bench", ks, rin, 1); err != nil {
		b.Fatal(err)
	}
	out := make([]Point, batch)
	var raw x25519.Key
	// Thread CPU time, not wall time: the machine is shared, and time this
	// thread spends descheduled must not count against either side.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var d [5]time.Duration // x hop, raw, r hop, x first, r first
	cpu := func() time.Duration {
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ts.Nano())
	}
	var laps [5]func()
	lap := func(i int, f func()) { laps[i] = f }
	lap(0, func() {
		if err := xk.Blind(xin, out, 1); err != nil {
			b.Fatal(err)
		}
	})
	lap(1, func() {
		for i := range xin {
			if !x25519.Shared(&raw, &xk.k, (*x25519.Key)(&xin[i])) {
				b.Fatal("low order")
			}
		}
	})
	lap(2, func() {
		if err := rk.Blind(rin, out, 1); err != nil {
			b.Fatal(err)
		}
	})
	lap(3, func() {
		if err := xk.HashAndBlind("bench", ks, out, 1); err != nil {
			b.Fatal(err)
		}
	})
	lap(4, func() {
		if err := rk.HashAndBlind("bench", ks, out, 1); err != nil {
			b.Fatal(err)
		}
	})
	iter := 0
	for b.Loop() {
		// Rotate the order every iteration so no lap always runs first.
		for j := range laps {
			i := (j + iter) % len(laps)
			t := cpu()
			laps[i]()
			d[i] += cpu() - t
		}
		iter++
	}
	per := func(i int) float64 { return d[i].Seconds() * 1e6 / float64(b.N*batch) }
	b.ReportMetric(per(0), "x25519-hop-µs")
	b.ReportMetric(per(1), "circl-raw-µs")
	b.ReportMetric(per(2), "r255-hop-µs")
	b.ReportMetric(per(3), "x25519-first-µs")
	b.ReportMetric(per(4), "r255-first-µs")
	b.ReportMetric(per(0)/per(1), "hop/raw")
	b.ReportMetric(per(2)/per(0), "r255/x25519")
}
