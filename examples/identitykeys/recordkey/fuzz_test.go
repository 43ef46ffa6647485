package recordkey

import (
	"bytes"
	"errors"
	"testing"
)

func chunks(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) > n {
		out = append(out, b[:n])
		b = b[n:]
	}
	return append(out, b)
}

// FuzzEvaluate feeds arbitrary blinded elements to the relay's decoder:
// it must never panic, must reject with ErrMalformed, and an accepted request
// must consist of canonical elements and yield a verifiable answer shape.
func FuzzEvaluate(f *testing.F) {
	e := evaluator(f, "hospital-a")
	_, blinded, err := NewQuery("hospital-a", e.PublicKey(), encode(f, alice))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(blinded[0], 32)
	f.Add(make([]byte, 32), 32)
	f.Add(bytes.Repeat(blinded[0], 5), 32)
	f.Add(blinded[0][:20], 7)
	f.Fuzz(func(t *testing.T, data []byte, size int) {
		if size <= 0 || size > 64 {
			size = 32
		}
		in := chunks(data, size)
		ev, proof, err := e.Evaluate(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || ev != nil || proof != nil {
				t.Fatalf("rejection = (%v, %v, %v)", ev, proof, err)
			}
			return
		}
		if _, err := decodeElements(in); err != nil {
			t.Fatal("accepted input does not decode")
		}
		if len(ev) != len(in) || len(proof) != ProofSize {
			t.Fatalf("answer shape %d/%d", len(ev), len(proof))
		}
	})
}

// FuzzFinalize feeds arbitrary answers to the terminal's decoder.
func FuzzFinalize(f *testing.F) {
	e := evaluator(f, "hospital-a")
	enc := encode(f, alice)
	_, blinded, err := NewQuery("hospital-a", e.PublicKey(), enc)
	if err != nil {
		f.Fatal(err)
	}
	ev, proof, err := e.Evaluate(blinded)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ev[0], proof)
	f.Add(make([]byte, 32), make([]byte, 64))
	f.Add(ev[0][:5], proof[:10])
	f.Fuzz(func(t *testing.T, el, pr []byte) {
		q, _, err := NewQuery("hospital-a", e.PublicKey(), enc)
		if err != nil {
			t.Fatal(err)
		}
		k, err := q.Finalize([][]byte{el}, pr)
		if err == nil {
			t.Fatal("Finalize accepted an answer to another query's blind")
		}
		if k != nil || !(errors.Is(err, ErrMalformed) || errors.Is(err, ErrProof)) {
			t.Fatalf("rejection = (%v, %v)", k, err)
		}
	})
}

// FuzzParsePublicKey: accepted keys re-encode to the same bytes.
func FuzzParsePublicKey(f *testing.F) {
	f.Add(evaluator(f, "hospital-a").PublicKey())
	f.Add(make([]byte, 32))
	f.Fuzz(func(t *testing.T, b []byte) {
		pk, err := ParsePublicKey(b)
		if err != nil {
			if pk != nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("rejection = (%v, %v)", pk, err)
			}
			return
		}
		re, err := pk.MarshalBinary()
		if err != nil || !bytes.Equal(re, b) {
			t.Fatal("accepted key does not re-encode identically")
		}
	})
}

// FuzzOpen: arbitrary ciphertexts never open under a key and never panic.
func FuzzOpen(f *testing.F) {
	k, err := evaluator(f, "hospital-a").Derive(encode(f, alice))
	if err != nil {
		f.Fatal(err)
	}
	ct, err := Seal(k, []byte("records"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ct)
	f.Add(ct[:Overhead])
	f.Add(append([]byte{2}, ct[1:]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		pt, err := Open(k, b)
		if bytes.Equal(b, ct) {
			if err != nil || string(pt) != "records" {
				t.Fatalf("seed does not open: %v", err)
			}
			return
		}
		if err == nil || pt != nil {
			t.Fatalf("Open accepted a forged ciphertext (%v)", err)
		}
		if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}

// FuzzParseGrant: accepted grants re-encode to identical bytes.
func FuzzParseGrant(f *testing.F) {
	b, err := testGrant(f).MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)-1])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := ParseGrant(b)
		if err != nil {
			if g != nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("rejection = (%v, %v)", g, err)
			}
			return
		}
		re, err := g.MarshalBinary()
		if err != nil || !bytes.Equal(re, b) {
			t.Fatal("accepted grant does not re-encode identically")
		}
	})
}

// FuzzOpenGrant: arbitrary sealed grants and sender keys never open.
func FuzzOpenGrant(f *testing.F) {
	patient, err := GenerateTerminalKey()
	if err != nil {
		f.Fatal(err)
	}
	doctor, err := GenerateTerminalKey()
	if err != nil {
		f.Fatal(err)
	}
	sealed, err := SealGrant(patient, "p", "d", doctor.PublicKey(), testGrant(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed, patient.PublicKey())
	f.Add(sealed[:33], patient.PublicKey())
	f.Add(sealed, make([]byte, 32))
	f.Fuzz(func(t *testing.T, b, sender []byte) {
		g, err := OpenGrant(doctor, "p", "d", sender, b)
		if bytes.Equal(b, sealed) && bytes.Equal(sender, patient.PublicKey()) {
			if err != nil {
				t.Fatalf("seed does not open: %v", err)
			}
			return
		}
		if err == nil || g != nil {
			t.Fatal("OpenGrant accepted a forged grant")
		}
	})
}
