package psi

import (
	"crypto/sha512"
)

// dhKeyFromSeed derives a DH key deterministically. Known-answer tests only.
func dhKeyFromSeed(seed string) *DHKey {
	h := sha512.Sum512([]byte(seed))
	k := &DHKey{}
	if _, err := k.s.SetUniformBytes(h[:]); err != nil {
		panic(err)
	}
	return k
}
