package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/nothingnesses/agent-images/changes"
	"github.com/nothingnesses/agent-images/internal/transport"
	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/render"
	"github.com/nothingnesses/agent-images/sign"
)

func newDiffCmd() *cobra.Command {
	var (
		from, to, registry, threshold string
		insecure, asJSON, asMarkdown  bool
		pf                            policyFlags
	)
	cmd := &cobra.Command{
		Use:   "diff AGENT [--from REF] [--to REF] [--registry PREFIX]",
		Short: "Show what changed between two published releases of an agent",
		Long: `diff compares two releases of AGENT in <registry>/<AGENT>: the version, each
platform's compressed size and its change, the store paths added and removed
(from the two CycloneDX SBOM attestations) and the flake inputs that moved
(from the two SLSA provenance attestations).

REF is a tag (latest, 0.70.6, 2026-05-01, sha-1234567) or a digest
(sha256:...). --to defaults to latest. --from defaults to the release before
--to: the newest dated tag (YYYY-MM-DD) that points elsewhere, past the dated
tags that point at --to; a --to with no dated tag needs --from.

With --key, or --certificate-identity and --certificate-oidc-issuer, only
attestations signed by that key or identity are read, and a release whose
attestations do not verify is an error; without them they are read
unverified and the output says so.`,
		Example: `  release diff pi --registry ghcr.io/nothingnesses/agent-images
  release diff pi --from 0.70.6 --to latest --size-threshold 10%
  release diff pi --from 2026-05-01 --json --key cosign.pub`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			agent, ctx := args[0], cmd.Context()
			if asJSON && asMarkdown {
				return fmt.Errorf("--json and --markdown conflict: pick one output")
			}
			client := transport.NewRegistry()
			fraction, err := sizeThreshold(threshold)
			if err != nil {
				return err
			}
			o := changes.Options{Remote: client.Options(ctx), SizeThreshold: fraction}
			if pf.given() {
				p, err := pf.policy("diff")
				if err != nil {
					return err
				}
				p.Registry = client
				// Built now, so that a policy that cannot work fails before
				// the registry is asked anything.
				if o.Verifier, err = sign.NewAttestationVerifier(ctx, p); err != nil {
					return err
				}
			}
			var given []string
			if registry != "" {
				given = []string{registry}
			}
			registries, err := registriesOrDefault(given, fmt.Sprintf("where is %s published?", agent))
			if err != nil {
				return err
			}
			repo, err := repository(registries[0], agent, insecure)
			if err != nil {
				return err
			}
			toRef, err := changes.ParseRef(repo, to)
			if err != nil {
				return fmt.Errorf("--to %w", err)
			}
			var fromRef name.Reference
			if from != "" {
				if fromRef, err = changes.ParseRef(repo, from); err != nil {
					return fmt.Errorf("--from %w", err)
				}
			}
			rep, err := changes.Between(ctx, fromRef, toRef, o)
			var none *changes.NoPreviousError
			switch {
			case errors.As(err, &none) && none.Dated:
				return fmt.Errorf("%w; name another with --from", err)
			case errors.As(err, &none):
				return fmt.Errorf("%w: name one with --from", err)
			case err != nil:
				return err
			}
			out := cmd.OutOrStdout()
			switch {
			case asJSON:
				b, err := json.MarshalIndent(rep, "", "  ")
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(out, string(b))
				return err
			case asMarkdown:
				_, err := fmt.Fprint(out, render.ChangesSection([]*record.Changes{rep}))
				return err
			}
			return render.ChangesText(out, rep)
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "the earlier release: a tag or sha256: digest (default: the dated release before --to)")
	f.StringVar(&to, "to", "latest", "the later release: a tag or sha256: digest")
	f.StringVar(&registry, "registry", "", "repository prefix the agent is published under (default under GitHub Actions: ghcr.io/<owner>/<repo>)")
	f.BoolVar(&insecure, "insecure", false, "allow a plain-HTTP registry")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON (the form release.json carries)")
	f.BoolVar(&asMarkdown, "markdown", false, "print the report as the Markdown of release notes and step summaries")
	f.StringVar(&threshold, "size-threshold", "", "flag platforms that grew by more than this percentage of their previous size, e.g. 10%")
	pf.register(cmd)
	return cmd
}
