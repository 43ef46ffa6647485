// Package access is the blockchain access layer of the record-sharing
// example (the seed's 区块链接入层). It sits between the app and the contract:
//
//   - it accepts calls only from configured source addresses (claim 9);
//   - it agrees a session key with the app, which sends a temporary public
//     key ([session.Grant], claim 8), and opens every payload under it
//     (claim 7);
//   - it checks signature 2 (the app's, bound to the session) and the
//     request's timestamp and nonce, then countersigns with signature 3,
//     addressed to the contract, and forwards request, signature 1 and
//     signature 3 (claim 1);
//   - it checks the contract's answer: signature 4 (addressed to this access
//     layer) and that the answer is for the request it forwarded; then it
//     countersigns with signature 5, bound to the session, and returns it
//     sealed (claim 6).
//
// # Secrets
//
// The access layer's private key and the session keys are secret. Record
// data passes through in clear inside this process. Logs carry key
// fingerprints, session ids, sizes and signature prefixes only.
package access
