package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mpsi-dev/mpsi/internal/devcert"
	"github.com/mpsi-dev/mpsi/internal/report"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// runReport writes the HTML report of a Result file.
func runReport(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("report", stdout)
	specPath := fs.String("spec", "", "the session's spec file (optional): adds fields, bounds, min_cell and the aggregation mode")
	out := fs.String("out", "", "write the HTML page here (- for stdout)")
	sigPath := fs.String("sig", "", "the coordinator's signature over RESULT.json, as written by mpsi session result --sig-out (needs --certs)")
	certs := fs.String("certs", "", "directory with ca.pem and the coordinator's certificate, to check --sig")
	coordName := fs.String("coordinator-name", "coordinator", "certificate name of the coordinator that signed")
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(positional) != 1 {
		return usageError(fs, errors.New("want one RESULT.json"), "mpsi report RESULT.json --out report.html")
	}
	if *out == "" {
		return usageError(fs, errors.New("--out is required"), "mpsi report RESULT.json --out report.html")
	}
	if (*sigPath == "") != (*certs == "") {
		return usageError(fs, errors.New("--sig and --certs go together"), "mpsi report RESULT.json --sig result.sig --certs ./certs --out report.html")
	}
	resultPath := positional[0]
	b, err := os.ReadFile(resultPath)
	if err != nil {
		return err
	}
	opt := report.Options{Version: version(), Generated: time.Now()}
	if *specPath != "" {
		if opt.Spec, err = session.LoadSpec(*specPath); err != nil {
			return err
		}
		raw, err := os.ReadFile(*specPath)
		if err != nil {
			return err
		}
		var top map[string]any // JSON is YAML: one decoder for both
		if err := yaml.Unmarshal(raw, &top); err != nil {
			return fmt.Errorf("%s: %w", *specPath, err)
		}
		opt.SpecPrivacy = top["privacy"]
	}
	// The signed bytes are the Result exactly as released; mpsi session
	// result adds one newline when it prints them.
	signed := bytes.TrimSuffix(b, []byte("\n"))
	if *sigPath != "" {
		opt.Signature, err = checkSignatureFiles(signed, *sigPath, *certs, *coordName)
		if err != nil {
			return err
		}
	} else {
		opt.Signature = report.Signature{Status: report.SignatureNotChecked,
			Detail: "No signature was given. To check it, fetch the result with mpsi session result --sig-out result.sig and pass --sig result.sig --certs DIR. (A party checks the coordinator's signature itself when it receives the Result.)"}
	}
	var page bytes.Buffer
	if err := report.Render(&page, b, opt); err != nil {
		return fmt.Errorf("%s: %w", resultPath, err)
	}
	fmt.Fprintf(stderr, "mpsi: report: signature %s\n", opt.Signature.Status)
	if *out == "-" {
		_, err := stdout.Write(page.Bytes())
		return err
	}
	if err := writeBytesAtomic(*out, page.Bytes()); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "mpsi: report: wrote %s (%d bytes)\n", *out, page.Len())
	if opt.Signature.Status == report.SignatureFailed {
		return fmt.Errorf("signature check failed: %s (the report says so)", opt.Signature.Detail)
	}
	return nil
}

// checkSignatureFiles reads a base64 signature and the coordinator's
// certificate and CA from certs, and checks the signature over signed.
func checkSignatureFiles(signed []byte, sigPath, certs, coordName string) (report.Signature, error) {
	sb, err := os.ReadFile(sigPath)
	if err != nil {
		return report.Signature{}, err
	}
	sig, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(sb)))
	if err != nil {
		return report.Signature{}, fmt.Errorf("%s: not a base64 signature: %w", sigPath, err)
	}
	pool, cert, err := devcert.LoadCertDir(certs, coordName)
	if err != nil {
		return report.Signature{}, err
	}
	return report.CheckSignature(signed, sig, cert, pool, time.Now()), nil
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
