package protocol

// Domain-separation labels. Each signed or hashed message starts with exactly
// one of these; no two uses share a label.
const (
	labelRequester  = "mpsi/examples/recordsharing/v1/sig1-requester"
	labelApp        = "mpsi/examples/recordsharing/v1/sig2-app"
	labelAccess     = "mpsi/examples/recordsharing/v1/sig3-access"
	labelContract   = "mpsi/examples/recordsharing/v1/sig4-contract"
	labelAccessResp = "mpsi/examples/recordsharing/v1/sig5-access-response"
	labelGrant      = "mpsi/examples/recordsharing/v1/session-grant"
	labelDigest     = "mpsi/examples/recordsharing/v1/request-digest"
)

// Labels of the registration and key-replacement statements.
const (
	labelApproval     = "mpsi/examples/recordsharing/v1/registration-approval"
	labelUserRotation = "mpsi/examples/recordsharing/v1/user-key-possession"
	labelAccessRotOld = "mpsi/examples/recordsharing/v1/access-rotation-by-old"
	labelAccessRotNew = "mpsi/examples/recordsharing/v1/access-rotation-by-new"
	labelPatientID    = "mpsi/examples/recordsharing/v1/patient-id"
)
