package party

import (
	"context"
	"time"

	"github.com/mpsi-dev/mpsi/psi/protocol"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// Config tunes [RunLocal]. The zero value is valid.
type Config struct {
	// Workers bounds the goroutines used for token work and the join; 0
	// means GOMAXPROCS.
	Workers int
	// Phase, if set, is called by [RunLocal] as the session leaves each
	// round (the names of [protocol.Round]: "setup", "tokens", "join",
	// "shares" or "keys", "ciphertexts", "key-switch") with its duration.
	Phase func(name string, d time.Duration)
}

// Input is one party's records for [RunLocal].
type Input struct {
	Name    string
	Records *Records
}

// Outcome is what a session releases: the coordinator's Result, and each
// party's own Result (the same, plus its members with reveal: membership).
type Outcome = protocol.Outcome

// RunLocal runs a whole session in one process, for trials where one
// researcher holds every party's data: the parties' and the coordinator's
// state machines of package protocol, with every message through the wire
// codec, shuttled in memory ([protocol.RunLocal]). inputs must name every
// party of the spec once. It stops between messages when ctx is done.
func RunLocal(ctx context.Context, spec *session.Spec, inputs []Input, cfg Config) (*Outcome, error) {
	in := make([]protocol.LocalInput, len(inputs))
	for k, x := range inputs {
		in[k] = protocol.LocalInput{Name: x.Name, Records: x.Records}
	}
	return protocol.RunLocal(ctx, spec, in, protocol.LocalConfig{Workers: cfg.Workers, Phase: cfg.Phase})
}
