package recordkey

// Domain-separation labels. Every KDF, AEAD and HPKE call uses one of them.
const (
	// LabelIndex is the HKDF info for a bundle's cloud index.
	LabelIndex = "mpsi/examples/identitykeys/v1/index"
	// LabelRecordKey is the HKDF info for a bundle's AES-256-GCM key.
	LabelRecordKey = "mpsi/examples/identitykeys/v1/record-key"
	// LabelAccessKey is the HKDF info for the seed of a bundle's Ed25519
	// access key, with which the patient proves to the cloud that it holds
	// y, and signs and revokes doctors' grants.
	LabelAccessKey = "mpsi/examples/identitykeys/v1/access-key"
	// labelInput opens the OPRF input: identity encoding and enrolment
	// credential.
	labelInput = "mpsi/examples/identitykeys/v1/oprf-input"
	// labelBundleAAD opens the associated data of a sealed bundle.
	labelBundleAAD = "mpsi/examples/identitykeys/v1/bundle"
	// labelGrant is the HPKE info for sealed grants.
	labelGrant = "mpsi/examples/identitykeys/v1/grant"
	// labelGrantEncoding opens a grant's plaintext encoding.
	labelGrantEncoding = "mpsi/examples/identitykeys/v1/grant-encoding"
)
