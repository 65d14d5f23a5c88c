package main

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/spf13/cobra"

	"github.com/nothingnesses/agent-images/internal/transport"
	"github.com/nothingnesses/agent-images/pipeline"
	"github.com/nothingnesses/agent-images/sign"
)

// signFlags configure signing of pushed releases: most set sign.Config as
// it is.
type signFlags struct {
	c           sign.Config
	sign        bool
	tlogUpload  bool
	fulcioRoots string
	sbom        []string
}

func (s *signFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&s.sign, "sign", true, "sign and attest what is pushed (--sign=false to publish unsigned, on purpose)")
	cmd.Flags().StringVar(&s.c.Key, "key", "", "signing key: a cosign key file, env://VAR, or a KMS URI; password in COSIGN_PASSWORD (default under GitHub Actions: keyless)")
	cmd.Flags().BoolVar(&s.tlogUpload, "tlog-upload", false, "write signatures to the Rekor transparency log (default: yes keyless, no with --key)")
	cmd.Flags().StringVar(&s.c.FulcioURL, "fulcio-url", sign.PublicFulcioURL, "Fulcio that certifies keyless signing keys")
	cmd.Flags().StringVar(&s.fulcioRoots, "fulcio-roots", "", "keyless: PEM file of the CA certificates --fulcio-url issues under (default: Sigstore's, from its TUF repository)")
	cmd.Flags().StringVar(&s.c.RekorURL, "rekor-url", sign.PublicRekorURL, "Rekor transparency log")
	cmd.Flags().StringSliceVar(&s.sbom, "sbom-format", []string{"cyclonedx", "spdx"}, "SBOM attestations of each per-arch image: cyclonedx, spdx, or both (repeat the flag or separate with commas)")
}

// setUp reads the flake's metadata into o, once for the run, gives o the
// run's one registry client, which the signer shares, and the signer for
// these flags: none when nothing is pushed (a local layout is
// never signed). A push always has one: --sign=false gives the signer that
// signs nothing, so that publishing unsigned is a choice. It fails now,
// before anything is built, when a push should be signed and cannot be.
func (s *signFlags) setUp(cmd *cobra.Command, o *pipeline.Options) (err error) {
	// A bad format is refused even when nothing is signed this time, and
	// before the flake is read.
	formats, err := sign.ParseSBOMFormats(s.sbom...)
	if err != nil {
		return fmt.Errorf("--sbom-format: %w", err)
	}
	if err := readFlake(cmd.Context(), o); err != nil {
		return err
	}
	o.Registry = transport.NewRegistry()
	if !o.Push {
		return nil
	}
	c := s.c
	c.Off, c.SBOMFormats, c.Registry = !s.sign, formats, o.Registry
	// Overrides are pinned by what Nix fetches for them, never recorded by
	// their reference (which can hold a token or a private path).
	c.Source = sign.Source{Repository: o.Source, Commit: o.Commit, FlakeInputs: sign.FlakeInputs(o.Metadata.Inputs, o.Flake.Overrides)}
	if s.fulcioRoots != "" && s.sign {
		if c.FulcioRoots, c.FulcioIntermediates, err = readCAFile(s.fulcioRoots); err != nil {
			return fmt.Errorf("--fulcio-roots: %w", err)
		}
	}
	// The default depends on the mode, so only a flag the user set counts.
	if cmd.Flags().Changed("tlog-upload") {
		c.TlogUpload = &s.tlogUpload
	}
	if o.Signer, err = sign.New(cmd.Context(), c); err != nil {
		return fmt.Errorf("signing: %w", err)
	}
	return nil
}

// readCAFile reads a PEM file of CA certificates into its roots (the
// self-signed ones) and intermediates.
func readCAFile(file string) (roots, inter *x509.CertPool, err error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, err
	}
	certs, err := cryptoutils.UnmarshalCertificatesFromPEM(data)
	if err != nil || len(certs) == 0 {
		return nil, nil, fmt.Errorf("%s holds no PEM certificates: %v", file, err)
	}
	roots, inter = x509.NewCertPool(), x509.NewCertPool()
	for _, c := range certs {
		if bytes.Equal(c.RawSubject, c.RawIssuer) {
			roots.AddCert(c)
		} else {
			inter.AddCert(c)
		}
	}
	return roots, inter, nil
}
