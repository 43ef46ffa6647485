package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/party/ledger"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// A hospital admits sessions with privacy against its budget until the
// next one would exceed it.
func ExampleLedger_Charge() {
	dir, _ := os.MkdirTemp("", "ledger")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	l, err := ledger.Open(ctx, filepath.Join(dir, "hospital-a-ledger.db"))
	if err != nil {
		panic(err)
	}
	defer l.Close()
	budget := party.Budget{Epsilon: 1.5, Delta: 1e-6}
	for _, id := range []string{"q1", "q2", "q3"} {
		spec, err := session.ParseSpec(fmt.Appendf(nil, `{"id":%q,"parties":["hospital-a","hospital-b"],
			"fields":{"n":"name","v":"number"},"match":{"fields":["n"]},"reveal":["aggregates"],
			"aggregates":[{"name":"v","kind":"sum","field":"v","min":0,"max":10}],
			"privacy":{"epsilon":1,"delta":1e-6}}`, id))
		if err != nil {
			panic(err)
		}
		_, err = l.Charge(ctx, "oncology", "hospital-a", spec, budget)
		fmt.Println(id, errors.Is(err, ledger.ErrExceeded))
	}
	// Output:
	// q1 false
	// q2 false
	// q3 true
}
