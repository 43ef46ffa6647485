// Package party is a hospital's side of mpsi: it reads the hospital's
// records (CSV with a column [Mapping]), normalises their identifiers and
// checks their values against the session spec, applies the hospital's
// local [Policy] to a spec before taking part, and drives the session
// protocol's party machine ([protocol.Party]) over gRPC with mutual TLS
// ([RunRemote]), or every party and the coordinator in one process
// ([RunLocal]).
//
// It does not import the coordinator: a hospital's program links no
// database, metrics or server code.
//
// # What leaves the hospital
//
// Only what the protocol sends: the declared set size, a signed session
// key, sealed envelopes to the other hospitals, pseudorandom tokens (dh ring
// points or keyed HMACs) in a secret shuffled order, and a masked share or
// ciphertexts of contributions. Record values and identifiers never appear
// in a message, an abort reason or a log line; load errors name the file,
// line and field, and stay local.
package party
