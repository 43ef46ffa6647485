// Package session agrees a session key between the app and the access layer
// and seals payloads with it, on top of TLS, as in claims 7 and 8 of the seed
// document.
//
// The app makes a temporary X25519 key pair ([NewInitiator]) and sends the
// public half. The access layer draws a fresh 32-byte session key, seals it to
// the temporary key with HPKE (RFC 9180, base mode,
// DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM, from
// github.com/cloudflare/circl/hpke) and returns it in a signed
// [protocol.SessionGrant] ([Grant]). The app opens it ([Initiator.Finish]) and
// the temporary private key is dropped: an Initiator is single use.
//
// Payloads are sealed with AES-256-GCM under the session key, a random
// 96-bit nonce per message, and associated data naming the session and the
// direction, so that a message cannot be reflected back to its sender or
// moved to another session.
//
// # Secrets
//
// The temporary private key and the session key are secret. The raw session
// key is overwritten once the AEAD is keyed; the AEAD's expanded key lives
// until the Session is garbage collected (crypto/cipher offers no way to wipe
// it). Nothing here logs.
package session
