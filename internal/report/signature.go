package report

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mpsi-dev/mpsi/internal/envelope"
)

// CheckSignature checks sig, the coordinator's signature over the exact
// bytes resultJSON of a released Result, against the coordinator's
// certificate, which must chain to roots and be valid at now. It never
// fails: the outcome, with the reason of a failure, is in the Signature.
func CheckSignature(resultJSON, sig []byte, coordinator *x509.Certificate, roots *x509.CertPool, now time.Time) Signature {
	var head struct {
		Session string `json:"session"`
	}
	if err := json.Unmarshal(resultJSON, &head); err != nil || head.Session == "" {
		return Signature{Status: SignatureFailed, Detail: "the result names no session, so no signature can match it"}
	}
	if coordinator == nil {
		return Signature{Status: SignatureFailed, Detail: "no coordinator certificate"}
	}
	if _, err := coordinator.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return Signature{Status: SignatureFailed, Detail: fmt.Sprintf("the coordinator certificate %q does not verify against the CA: %v", coordinator.Subject.CommonName, err)}
	}
	if err := envelope.VerifyResult(coordinator, head.Session, resultJSON, sig); err != nil {
		return Signature{Status: SignatureFailed, Detail: fmt.Sprintf("the signature does not match these result bytes and the certificate of %q: the file was changed, or signed by another key", coordinator.Subject.CommonName)}
	}
	return Signature{Status: SignatureVerified, Signer: coordinator.Subject.CommonName,
		Detail: fmt.Sprintf("The coordinator's signature over this exact Result (session %s) verifies with the certificate of %q, issued by %q.", head.Session, coordinator.Subject.CommonName, coordinator.Issuer.CommonName)}
}
