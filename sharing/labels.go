package sharing

// Domain-separation labels. Each label is used in exactly one place; changing
// one changes the protocol (and invalidates testdata/vectors).
const (
	// labelExpand prefixes the HKDF-SHA256 info string in [Expand]. It is a
	// fixed-length prefix, so label‖context is injective in context.
	labelExpand = "mpsi/sharing/v1/expand"
)
