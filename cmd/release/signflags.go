package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nothingnesses/agent-images/internal/nix"
	"github.com/nothingnesses/agent-images/pipeline"
	"github.com/nothingnesses/agent-images/sign"
)

// signFlags configure signing of pushed releases.
type signFlags struct {
	sign       bool
	key        string
	tlogUpload bool
	fulcioURL  string
	rekorURL   string
	sbom       []string
}

func (s *signFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&s.sign, "sign", true, "sign and attest what --push publishes (--sign=false to publish unsigned)")
	cmd.Flags().StringVar(&s.key, "key", "", "signing key: a cosign key file, env://VAR, or a KMS URI; password in COSIGN_PASSWORD (default under GitHub Actions: keyless)")
	cmd.Flags().BoolVar(&s.tlogUpload, "tlog-upload", false, "write signatures to the Rekor transparency log (default: yes keyless, no with --key)")
	cmd.Flags().StringVar(&s.fulcioURL, "fulcio-url", sign.PublicFulcioURL, "Fulcio that certifies keyless signing keys")
	cmd.Flags().StringVar(&s.rekorURL, "rekor-url", sign.PublicRekorURL, "Rekor transparency log")
	cmd.Flags().StringSliceVar(&s.sbom, "sbom-format", []string{"cyclonedx", "spdx"}, "SBOM attestations of each per-arch image: cyclonedx, spdx, or both (repeat the flag or separate with commas)")
}

// signer returns the pipeline's signer for these flags, nil when nothing is
// pushed or signing is off. It fails now, before anything is built, when a
// push should be signed and cannot be.
func (s *signFlags) signer(cmd *cobra.Command, o pipeline.Options) (pipeline.Signer, error) {
	// A bad format is refused even when nothing is signed this time.
	formats, err := sign.ParseSBOMFormats(s.sbom...)
	if err != nil {
		return nil, fmt.Errorf("--sbom-format: %w", err)
	}
	// release build only stages per-arch images; release merge signs them
	// with the index, before its tags move.
	if !o.Push || o.DryRun || !s.sign || cmd.Name() == "build" {
		return nil, nil
	}
	opts := []sign.Option{sign.WithFulcioURL(s.fulcioURL), sign.WithRekorURL(s.rekorURL), sign.WithSBOMFormats(formats...)}
	if s.key != "" {
		opts = append(opts, sign.WithKey(s.key))
	}
	if cmd.Flags().Changed("tlog-upload") {
		opts = append(opts, sign.WithTlogUpload(s.tlogUpload))
	}
	signer, err := sign.New(cmd.Context(), opts...)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	// Overrides are pinned by what Nix fetches for them, never recorded by
	// their reference (which can hold a token or a private path).
	lock, err := o.Flake.Lock(cmd.Context(), nix.Run)
	if err != nil {
		return nil, err
	}
	inputs, err := sign.FlakeInputs(lock, o.Flake.Overrides)
	if err != nil {
		return nil, err
	}
	return &pipelineSigner{signer: signer, builderID: sign.BuilderIDFromEnv(), flakeInputs: inputs}, nil
}

// pipelineSigner adapts sign.Signer to the pipeline's signing hook.
type pipelineSigner struct {
	signer      sign.Signer
	builderID   string
	flakeInputs map[string]sign.FlakeInput
}

func (p *pipelineSigner) Sign(ctx context.Context, req pipeline.SignRequest) (any, error) {
	r := sign.Request{
		Index: req.Index,
		Agent: sign.Agent{
			Attr: req.Agent.Attr, Name: req.Agent.Name, Version: req.Agent.Version,
			License: req.Agent.License, Description: req.Agent.Description,
		},
		Source:    sign.Source{Repository: req.Source, Commit: req.Commit, FlakeInputs: p.flakeInputs},
		BuilderID: p.builderID,
	}
	for _, im := range req.Images {
		r.Platforms = append(r.Platforms, sign.Platform{
			Manifest: im.Digest, Platform: im.Platform, Image: im.Image, Derivation: im.DrvPath,
		})
	}
	return p.signer.Sign(ctx, r)
}
