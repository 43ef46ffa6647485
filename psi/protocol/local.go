package protocol

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/mpsi-dev/mpsi/internal/devcert"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// LocalInput is one party's records for [RunLocal].
type LocalInput struct {
	Name    string
	Records Records
}

// LocalConfig tunes [RunLocal]. The zero value is valid.
type LocalConfig struct {
	// Workers bounds the goroutines of token work and of the join; 0 means
	// GOMAXPROCS.
	Workers int
	// Phase, if set, is called as the coordinator leaves each round, with
	// the round's name and duration.
	Phase func(round string, d time.Duration)
}

// Outcome is what a session releases: the coordinator's Result, and each
// party's own Result (the same, plus its members with reveal: membership).
type Outcome struct {
	Result  *session.Result
	Parties map[string]*session.Result
}

// RunLocal runs a whole session in one process: n [Party] machines and one
// [Coordinator] machine, with every message encoded and decoded by the
// wire codec and shuttled in memory, exactly as the network carries them.
// A throwaway certificate authority issues every participant's certificate
// for the run (so rosters, envelopes and the Result signature are checked
// as over the network). inputs must name every party of the spec once. It
// stops between messages when ctx is done.
func RunLocal(ctx context.Context, spec *session.Spec, inputs []LocalInput, cfg LocalConfig) (*Outcome, error) {
	n := len(spec.Parties)
	if len(inputs) != n {
		return nil, fmt.Errorf("protocol: RunLocal: %d inputs for %d parties", len(inputs), n)
	}
	recs := make([]Records, n)
	for _, in := range inputs {
		i := spec.PartyIndex(in.Name)
		if i < 0 || recs[i] != nil {
			return nil, fmt.Errorf("protocol: RunLocal: input %q is not a party or given twice", in.Name)
		}
		recs[i] = in.Records
	}
	ca, err := devcert.NewCA("mpsi local run")
	if err != nil {
		return nil, err
	}
	coordSigner, coordCert, err := issue(ca, "coordinator")
	if err != nil {
		return nil, err
	}
	coord, err := NewCoordinator(spec, CoordinatorConfig{Signer: coordSigner, Name: "coordinator", Workers: cfg.Workers})
	if err != nil {
		return nil, err
	}
	defer coord.Close()
	parties := make([]*Party, n)
	certs := make([][]byte, n)
	for i, name := range spec.Parties {
		signer, cert, err := issue(ca, name)
		if err != nil {
			return nil, err
		}
		parties[i], err = NewParty(PartyConfig{Session: spec.ID, Name: name, Signer: signer, Roots: ca.Pool(),
			Coordinator: func() *x509.Certificate { return coordCert }, CoordinatorName: "coordinator", Workers: cfg.Workers})
		if err != nil {
			return nil, err
		}
		certs[i] = cert.Raw
	}
	type fromParty struct {
		i int
		m Message
	}
	var toCoord []fromParty
	toParty := make([][]Message, n)
	out := &Outcome{Parties: map[string]*session.Result{}}
	roundStart, round := time.Now(), coord.Round()
	// wire passes a message through the codec, as the transport does.
	wire := func(m Message) (Message, error) {
		b, err := Encode(m)
		if err != nil {
			return nil, err
		}
		return Decode(b)
	}
	for {
		if err := ctx.Err(); err != nil {
			coord.Abort(CodeShutdown, "local run cancelled")
			return nil, err
		}
		for _, ev := range coord.Events() {
			switch e := ev.(type) {
			case Send:
				m, err := wire(e.Msg)
				if err != nil {
					return nil, err
				}
				toParty[e.To] = append(toParty[e.To], m)
			case RoundEntered:
				if cfg.Phase != nil && e.Round != round {
					cfg.Phase(round.String(), time.Since(roundStart))
				}
				roundStart, round = time.Now(), e.Round
			case Released:
				out.Result = e.Result
			case Aborted:
				return nil, &AbortError{Code: e.Code, Reason: e.Reason}
			}
		}
		for i, p := range parties {
			for _, ev := range p.Events() {
				switch e := ev.(type) {
				case Send:
					m, err := wire(e.Msg)
					if err != nil {
						return nil, err
					}
					if h, ok := m.(*Hello); ok {
						// The transport's job: authenticate the party and
						// attach it to the session it names.
						if h.Session != spec.ID {
							return nil, fmt.Errorf("protocol: RunLocal: %s says hello to session %q", spec.Parties[i], h.Session)
						}
						if err := coord.Attach(i, certs[i]); err != nil {
							return nil, err
						}
						continue
					}
					toCoord = append(toCoord, fromParty{i, m})
				case Released:
					out.Parties[spec.Parties[i]] = e.Result
				case Aborted:
					return nil, &AbortError{Code: e.Code, Reason: fmt.Sprintf("%s: %s", spec.Parties[i], e.Reason)}
				}
			}
			if p.State() == StateOffered {
				if err := p.Accept(recs[i]); err != nil {
					return nil, err
				}
			}
		}
		if len(out.Parties) == n && out.Result != nil {
			return out, nil
		}
		moved := len(toCoord) > 0
		for _, fp := range toCoord {
			if err := coord.Receive(ctx, fp.i, fp.m); err != nil {
				return nil, err
			}
		}
		toCoord = toCoord[:0]
		for i, p := range parties {
			for _, m := range toParty[i] {
				moved = true
				if err := p.Receive(m); err != nil {
					return nil, err
				}
			}
			toParty[i] = toParty[i][:0]
		}
		if moved {
			continue
		}
		for _, p := range parties {
			did, err := p.Step()
			if err != nil {
				return nil, err
			}
			moved = moved || did
		}
		if !moved && len(coord.events) == 0 && !anyEvents(parties) {
			return nil, errors.New("protocol: RunLocal: the session stalled (no message and no local work left)")
		}
	}
}

func anyEvents(ps []*Party) bool {
	for _, p := range ps {
		if len(p.events) > 0 {
			return true
		}
	}
	return false
}

// issue makes a certificate for name and returns its key and certificate.
func issue(ca *devcert.CA, name string) (crypto.Signer, *x509.Certificate, error) {
	leaf, err := ca.Issue(name)
	if err != nil {
		return nil, nil, err
	}
	return signerOf(leaf)
}

// signerOf returns a leaf's key and parsed certificate.
func signerOf(leaf *devcert.Leaf) (crypto.Signer, *x509.Certificate, error) {
	tc, err := leaf.TLSCertificate()
	if err != nil {
		return nil, nil, err
	}
	signer, ok := tc.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("protocol: certificate key cannot sign")
	}
	blk, _ := pem.Decode(leaf.CertPEM)
	if blk == nil {
		return nil, nil, errors.New("protocol: certificate PEM")
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, nil, err
	}
	return signer, cert, nil
}
