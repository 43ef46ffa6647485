package psi

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
)

// KeySize is the size of a keyed-mode group key and of each contribution.
const KeySize = 32

// TokenSize is the size of a token in either mode.
const TokenSize = 32

// KeyContribution is one party's secret share of the keyed-mode group key.
type KeyContribution [KeySize]byte

// GroupKey is the keyed-mode PRF key shared by all parties and never by the
// coordinator. It is secret.
type GroupKey struct {
	k [KeySize]byte
}

// GenerateKeyContribution draws a contribution from crypto/rand.
func GenerateKeyContribution() (KeyContribution, error) {
	var c KeyContribution
	if _, err := rand.Read(c[:]); err != nil {
		return c, fmt.Errorf("psi: drawing a key contribution: %w", err)
	}
	return c, nil
}

// DeriveGroupKey hashes the contributions of all n parties, sorted, with the
// session id into the group key. Every party derives the same key whatever
// the order it received contributions in. Duplicate contributions are
// refused (they mean a replayed or echoed message).
func DeriveGroupKey(session string, contributions []KeyContribution) (*GroupKey, error) {
	if session == "" || len(session) > MaxSessionIDSize {
		return nil, fmt.Errorf("%w: length %d", ErrInvalidSession, len(session))
	}
	if len(contributions) < 2 {
		return nil, fmt.Errorf("%w: need at least 2, have %d", ErrContributions, len(contributions))
	}
	sorted := slices.Clone(contributions)
	slices.SortFunc(sorted, func(a, b KeyContribution) int { return bytes.Compare(a[:], b[:]) })
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return nil, fmt.Errorf("%w: duplicate contribution", ErrContributions)
		}
	}
	h := sha256.New()
	h.Write([]byte(labelGroupKey))
	var l [8]byte
	binary.BigEndian.PutUint64(l[:], uint64(len(session)))
	h.Write(l[:])
	h.Write([]byte(session))
	binary.BigEndian.PutUint64(l[:], uint64(len(sorted)))
	h.Write(l[:])
	for _, c := range sorted {
		h.Write(c[:])
	}
	var g GroupKey
	h.Sum(g.k[:0])
	return &g, nil
}

// Derive returns a 32-byte secret for another use of the group key:
// HMAC-SHA256(group key, label ‖ len(session) ‖ session). Labels separate
// the uses; the secret is as secret as the group key (clear it after use).
func (g *GroupKey) Derive(label, session string) []byte {
	m := hmac.New(sha256.New, g.k[:])
	m.Write([]byte(label))
	var l [8]byte
	binary.BigEndian.PutUint64(l[:], uint64(len(session)))
	m.Write(l[:])
	m.Write([]byte(session))
	return m.Sum(nil)
}

// KeyedTokens sets out[i] = HMAC-SHA256(group key, label ‖ session ‖ keys[i])
// for every i, on at most workers goroutines (0 means GOMAXPROCS).
func (g *GroupKey) KeyedTokens(session string, keys [][]byte, out [][TokenSize]byte, workers int) error {
	if len(out) != len(keys) {
		return fmt.Errorf("psi: KeyedTokens: %d keys but %d outputs", len(keys), len(out))
	}
	if session == "" || len(session) > MaxSessionIDSize {
		return fmt.Errorf("%w: length %d", ErrInvalidSession, len(session))
	}
	prefix := make([]byte, 0, len(labelKeyedToken)+1+len(session))
	prefix = append(prefix, labelKeyedToken...)
	prefix = append(prefix, byte(len(session)))
	prefix = append(prefix, session...)
	return parallel(len(keys), workers, func(lo, hi int) error {
		m := hmac.New(sha256.New, g.k[:])
		for i := lo; i < hi; i++ {
			m.Reset()
			m.Write(prefix)
			m.Write(keys[i])
			m.Sum(out[i][:0])
		}
		return nil
	})
}
