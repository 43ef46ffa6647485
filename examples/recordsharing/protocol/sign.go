package protocol

import (
	"crypto/ed25519"
	"fmt"
)

// KeyPair is an Ed25519 key pair. The private half never leaves the value:
// it is not exported, printed or encoded. A KeyPair is safe for concurrent
// use until Destroy is called.
type KeyPair struct {
	pub  Key
	priv ed25519.PrivateKey
}

// GenerateKeyPair draws a new key pair from crypto/rand.
func GenerateKeyPair() (*KeyPair, error) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, fmt.Errorf("protocol: generating key: %w", err)
	}
	k := &KeyPair{priv: priv}
	copy(k.pub[:], pub)
	return k, nil
}

// Public returns the public key.
func (k *KeyPair) Public() Key { return k.pub }

// PrivateKey returns the Ed25519 private key, for components (the ledger)
// that sign with it directly. The caller must not log or store it.
func (k *KeyPair) PrivateKey() ed25519.PrivateKey { return k.priv }

// String prints only the public fingerprint.
func (k *KeyPair) String() string { return "KeyPair(" + k.pub.String() + ")" }

// Destroy overwrites the private key; k must not be used afterwards.
func (k *KeyPair) Destroy() {
	clear(k.priv)
	k.priv = nil
}

func (k *KeyPair) sign(msg []byte) Signature {
	if len(k.priv) != ed25519.PrivateKeySize {
		panic("protocol: KeyPair used after Destroy") // programmer error
	}
	var s Signature
	copy(s[:], ed25519.Sign(k.priv, msg))
	return s
}

func verify(pub Key, msg []byte, sig Signature, which string) error {
	if pub.IsZero() || !ed25519.Verify(pub[:], msg, sig[:]) {
		return fmt.Errorf("protocol: %s: %w", which, ErrBadSignature)
	}
	return nil
}

// Names of the signatures, used in error messages.
const (
	Sig1 = "signature 1 (requester)"
	Sig2 = "signature 2 (app)"
	Sig3 = "signature 3 (access layer)"
	Sig4 = "signature 4 (contract)"
	Sig5 = "signature 5 (access layer, response)"
)

// SignRequester makes signature 1: the requester's signature over the
// canonical request.
func SignRequester(k *KeyPair, request []byte) Signature {
	return k.sign(frame(labelRequester, request))
}

// VerifyRequester checks signature 1 under the requester key pub.
func VerifyRequester(pub Key, request []byte, sig Signature) error {
	return verify(pub, frame(labelRequester, request), sig, Sig1)
}

// SignApp makes signature 2: the app's signature over the request and
// signature 1, bound to the app/access-layer session.
func SignApp(k *KeyPair, session SessionID, request []byte, sig1 Signature) Signature {
	return k.sign(frame(labelApp, session[:], request, sig1[:]))
}

// VerifyApp checks signature 2 under the app key.
func VerifyApp(app Key, session SessionID, request []byte, sig1, sig2 Signature) error {
	return verify(app, frame(labelApp, session[:], request, sig1[:]), sig2, Sig2)
}

// SignAccess makes signature 3: the access layer's countersignature over the
// request and signature 1, addressed to the contract with key contract.
func SignAccess(k *KeyPair, contract Key, request []byte, sig1 Signature) Signature {
	return k.sign(frame(labelAccess, contract[:], request, sig1[:]))
}

// VerifyAccess checks signature 3 under the access layer key access, for
// the contract with key contract.
func VerifyAccess(access, contract Key, request []byte, sig1, sig3 Signature) error {
	return verify(access, frame(labelAccess, contract[:], request, sig1[:]), sig3, Sig3)
}

// SignContract makes signature 4: the contract's signature over its
// response, addressed to the access layer with key access.
func SignContract(k *KeyPair, access Key, response []byte) Signature {
	return k.sign(frame(labelContract, access[:], response))
}

// VerifyContract checks signature 4 under the contract key.
func VerifyContract(contract, access Key, response []byte, sig4 Signature) error {
	return verify(contract, frame(labelContract, access[:], response), sig4, Sig4)
}

// SignAccessResponse makes signature 5: the access layer's
// countersignature over the response, bound to the session. The access layer
// makes it only after checking signature 4.
func SignAccessResponse(k *KeyPair, session SessionID, response []byte) Signature {
	return k.sign(frame(labelAccessResp, session[:], response))
}

// VerifyAccessResponse checks signature 5 under the access layer key.
func VerifyAccessResponse(access Key, session SessionID, response []byte, sig5 Signature) error {
	return verify(access, frame(labelAccessResp, session[:], response), sig5, Sig5)
}

// SignGrant signs an encoded session grant.
func SignGrant(k *KeyPair, grant []byte) Signature {
	return k.sign(frame(labelGrant, grant))
}

// VerifyGrant checks the access layer's signature over an encoded grant.
func VerifyGrant(access Key, grant []byte, sig Signature) error {
	return verify(access, frame(labelGrant, grant), sig, "session grant signature")
}

// KeyPairFromPrivate wraps an Ed25519 private key (read from a key file).
// The KeyPair keeps a copy; the caller may clear priv.
func KeyPairFromPrivate(priv ed25519.PrivateKey) *KeyPair {
	k := &KeyPair{priv: append(ed25519.PrivateKey(nil), priv...)}
	copy(k.pub[:], priv.Public().(ed25519.PublicKey))
	return k
}
