package mhe

// Domain-separation labels. Each label is used in exactly one place; changing
// one changes the protocol.
const (
	// labelParams prefixes the parameter fingerprint hashed into SessionID.
	labelParams = "mpsi/sharing/mhe/v1/params"
	// labelSession prefixes the session-id derivation in NewSessionID.
	labelSession = "mpsi/sharing/mhe/v1/session"
	// labelCRS prefixes the key of every common-reference-string PRNG.
	labelCRS = "mpsi/sharing/mhe/v1/crs"

	// crsCKG and crsGKG name the CRS instances (the Galois element is
	// appended for crsGKG, so every key has its own PRNG).
	crsCKG = "ckg"
	crsGKG = "gkg"
)
