// Package protocol holds the messages of the record-sharing example, their
// canonical encodings, the five signatures of the seed document and replay
// protection. It does no I/O, starts no goroutines and reads no clock: callers
// pass the time in.
//
// Message flow (signature numbers follow the seed document):
//
//	app                           access layer                    contract
//	 |  Request, sig1 (requester)      |                               |
//	 |  sig2 (app, bound to session)   |                               |
//	 |--- sealed under session key --->| check source, sig2, freshness |
//	 |                                 |  Request, sig1, sig3 (access) |
//	 |                                 |------------------------------>| check sig3, sig1,
//	 |                                 |                               | freshness, permission,
//	 |                                 |   Response, sig4 (contract)   | append to ledger
//	 |                                 |<------------------------------|
//	 |   Response, sig5 (access)       | check sig4, bind to request   |
//	 |<-- sealed under session key ----|                               |
//	 | check sig5, bind to request     |                               |
//
// Every signature is Ed25519 (crypto/ed25519) over a canonical encoding that
// starts with a domain-separation label naming the signature (labels.go) and
// holds the hop's context: signature 2 and 5 name the app/access session,
// signature 3 names the contract it is meant for, signature 4 the access
// layer. Requests carry a timestamp and a random nonce; [ReplayGuard] keeps a
// nonce cache over a validity window. Responses carry the digest of the
// request they answer, so a response cannot be replayed to another request.
//
// # Security model
//
// The access layer and the contract are trusted to enforce the checks; the
// network between them is not. Public keys, record identifiers, signatures
// and timestamps are public. Record data is confidential on the wire (TLS
// plus the session key between app and access layer) but is stored in clear
// in the ledger, as in the seed document. Private keys are secret; [KeyPair]
// never prints or encodes its private half.
//
// # Constant time
//
// Signing and verification are constant time in the stdlib. Comparisons of
// public values (keys, digests, nonces) use ordinary equality.
package protocol
