// Package recordkey derives a patient's record key from their identity
// through a hospital's verifiable OPRF (RFC 9497, circl oprf, suite
// ristretto255-SHA512, verifiable mode), and seals and opens record bundles
// under it. It is sans-I/O: no network, goroutines or clocks.
//
// Message flow for one hospital H with OPRF key k_H (public key K_H = k_H·G):
//
//	patient terminal                          hospital relay H
//	x = Input(identity.Encode(fields), credential)
//	(q, blinded) = NewQuery(H, K_H, x)
//	                      ---- blinded ---->
//	                                           Evaluator.Evaluate: k_H·blinded, DLEQ proof
//	                      <-- evaluated, proof --
//	key = q.Finalize(evaluated, proof)         (checks the proof against K_H)
//
//	y     = OPRF_H(x)                                        64 bytes, secret
//	index = HKDF-SHA256(y, salt=H, info=LabelIndex)          32 bytes, public
//	key   = HKDF-SHA256(y, salt=H, info=LabelRecordKey)      32 bytes, secret
//	acc   = Ed25519(HKDF-SHA256(y, salt=H, info=LabelAccessKey)) access key, secret
//
// The credential is the patient's enrolment [Credential] at H: 32 random
// bytes H issued at registration and keeps in its database, and that the
// patient's terminal holds. Knowing the identity fields alone gives another
// y.
// The relay computes the same y for the records in its database with
// [Evaluator.Derive], files each patient's bundle at the cloud under index,
// sealed with AES-256-GCM under key ([Seal]), with the access public key
// beside it. The patient proves to the cloud that it holds y by signing
// fetches with the access key ([FetchMessage]), and signs doctors' grants
// ([Permit]) and revocations ([RevokeMessage]) with it. A [Grant] carries
// [ReadKey]s (index and record key, not y, so not the access key) and grant
// ids; a patient seals it to a doctor, and a doctor to a colleague, with
// HPKE in authenticated mode ([SealGrant]).
//
// # Security model
//
// Secret: the OPRF private keys (relay only), identity encodings, the y values,
// record keys, grants, bundle plaintexts. Public: OPRF public keys, blinded
// and evaluated elements, proofs, indexes, ciphertexts and sealed grants.
// Without k_H nobody can compute y from an identity, so the cloud, which
// holds indexes and ciphertexts, cannot test guessed identities offline; each
// guess needs an online, rate-limited query to the relay. The relay learns
// nothing about the identity a terminal queries (the blinding is uniformly
// random). The verifiable mode lets a terminal check that the relay used the
// key it published, so a relay cannot single out one patient with a different
// key. Accepted leakage: the cloud sees how many bundles each hospital has,
// their padded sizes (multiples of [PadBlock]), and which index a terminal
// fetches and when.
//
// # Constant time
//
// Group arithmetic is ristretto255 (constant time in circl). Secrets are
// compared only with crypto/subtle.
package recordkey
