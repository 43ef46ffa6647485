// Package contract is the ledger contract of the record-sharing example (the
// seed's 智能合约). It holds the registered patient and doctor keys, the
// records and their authorisations, all derived from the hash-chained ledger
// it appends to.
//
// For every request it checks, in this order: signature 3 (the access
// layer's countersignature, addressed to this contract), the request's
// canonical encoding, signature 1 (the requester's signature), the timestamp
// and nonce (replay protection), and then the requester's right to act:
//
//   - register: the key is not registered yet (signature 1 by the new key is
//     its proof of possession), and the registration authority whose key is
//     set at deployment approved this key, role and (for a patient) patient
//     id; a patient id has one key;
//   - upload: the record names a registered patient id, and the requester is
//     that patient's key, which becomes the owner;
//   - rotate: the new key is unregistered and signed its proof of
//     possession; it takes over the old key's patient id, records and
//     authorisations, and the old key signs nothing more;
//   - authorize: the requester owns the record and the doctor key is a
//     registered doctor;
//   - revoke: the requester owns the record and the doctor is authorised;
//   - view: the requester owns the record or is an authorised doctor.
//
// Every request but register needs a registered key that was not replaced.
//
// The access layer's key can be replaced too ([Contract.RotateAccess]): the
// rotation, signed by the old and the new key, is a ledger entry, so that
// signatures 3 made under the old key stay verifiable ([CheckEntry]).
//
// An accepted request is appended to the ledger (views too, as an access
// log) and answered with a [protocol.Response] under signature 4, addressed
// to the access layer.
//
// # Secrets
//
// The contract's private key signs answers and ledger checkpoints. Record
// data is confidential but stored in the ledger in clear, as in the seed.
// Logs carry key fingerprints, record ids and sizes, never record data.
package contract
