package protocol

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
)

const labelRingMAC = "mpsi/v1/ring-batch"

// RingMAC authenticates one ring batch of the first match key's lists:
// [RingMACKey] with match key 0.
func RingMAC(key []byte, session string, owner, hopDone uint32, offset, total uint64, data []byte) []byte {
	return RingMACKey(key, session, 0, owner, hopDone, offset, total, data)
}

// RingMACKey authenticates one ring batch from the party that produced it
// to the next party in the ring: HMAC-SHA256 under the key the producer
// sealed to the next party (EnvelopeRingKey), over the session, the match
// key whose list it is, the list's owner, the hop the producer just did,
// the batch's offset and count, the list's total and the elements.
func RingMACKey(key []byte, session string, matchKey uint8, owner, hopDone uint32, offset, total uint64, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	var b []byte
	b = append(b, labelRingMAC...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(session)))
	b = append(b, session...)
	b = append(b, matchKey)
	b = binary.BigEndian.AppendUint32(b, owner)
	b = binary.BigEndian.AppendUint32(b, hopDone)
	b = binary.BigEndian.AppendUint64(b, offset)
	b = binary.BigEndian.AppendUint64(b, uint64(len(data)))
	b = binary.BigEndian.AppendUint64(b, total)
	m.Write(b)
	m.Write(data)
	return m.Sum(nil)
}

// tallyBytes is the canonical statement the coordinator signs in a Tally.
func tallyBytes(intersection uint64, pairwise []uint64) []byte {
	b := binary.BigEndian.AppendUint64(nil, intersection)
	b = binary.BigEndian.AppendUint32(b, uint32(len(pairwise)))
	for _, v := range pairwise {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return b
}

// SpecHash is the hash of a spec's canonical JSON that every party signs
// in its Ready: parties that accepted different specs cannot share a
// roster.
func SpecHash(canonical []byte) []byte {
	h := sha256.Sum256(canonical)
	return h[:]
}
