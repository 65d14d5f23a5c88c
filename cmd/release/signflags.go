package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

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
}

func (s *signFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&s.sign, "sign", true, "sign and attest what --push publishes (--sign=false to publish unsigned)")
	cmd.Flags().StringVar(&s.key, "key", "", "signing key: a cosign key file, env://VAR, or a KMS URI; password in COSIGN_PASSWORD (default under GitHub Actions: keyless)")
	cmd.Flags().BoolVar(&s.tlogUpload, "tlog-upload", false, "write signatures to the Rekor transparency log (default: yes keyless, no with --key)")
	cmd.Flags().StringVar(&s.fulcioURL, "fulcio-url", sign.PublicFulcioURL, "Fulcio that certifies keyless signing keys")
	cmd.Flags().StringVar(&s.rekorURL, "rekor-url", sign.PublicRekorURL, "Rekor transparency log")
}

// signer returns the pipeline's signer for these flags, nil when nothing is
// pushed or signing is off. It fails now, before anything is built, when a
// push should be signed and cannot be.
func (s *signFlags) signer(cmd *cobra.Command, o pipeline.Options) (pipeline.Signer, error) {
	// release build only stages per-arch images; release merge signs them
	// with the index, before its tags move.
	if !o.Push || o.DryRun || !s.sign || cmd.Name() == "build" {
		return nil, nil
	}
	opts := []sign.Option{sign.WithFulcioURL(s.fulcioURL), sign.WithRekorURL(s.rekorURL)}
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
	inputs, err := sign.FlakeInputs(localFlakeDir(o.Flake.Ref), o.Flake.Overrides)
	if err != nil {
		return nil, err
	}
	return &pipelineSigner{signer: signer, builderID: sign.BuilderIDFromEnv(), flakeInputs: inputs}, nil
}

// localFlakeDir is the directory of a local flake reference ("." or
// path:/x), where its flake.lock is; "" for remote flakes.
func localFlakeDir(ref string) string {
	switch {
	case ref == "":
		return "."
	case strings.HasPrefix(ref, "path:"):
		return strings.TrimPrefix(ref, "path:")
	case strings.HasPrefix(ref, "git+file://"):
		return strings.TrimPrefix(ref, "git+file://")
	case strings.Contains(ref, ":"):
		return ""
	}
	return ref
}

// pipelineSigner adapts sign.Signer to the pipeline's signing hook.
type pipelineSigner struct {
	signer      sign.Signer
	builderID   string
	flakeInputs map[string]string
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
