package psi

// Domain-separation labels. Every hash, KDF and hash-to-group call in mpsi
// uses one of these, followed by the session id where a session exists.
const (
	labelHashToGroup = "mpsi/v1/dh/hash-to-group/ristretto255_XMD:SHA-512_R255MAP_RO_/"
	labelGroupKey    = "mpsi/v1/keyed/group-key"
	labelKeyedToken  = "mpsi/v1/keyed/token"
)
