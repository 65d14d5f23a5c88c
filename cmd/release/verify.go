package main

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/nothingnesses/agent-images/sign"
)

func newVerifyCmd() *cobra.Command {
	var (
		agent, registry, tag string
		insecure             bool
		pf                   policyFlags
	)
	cmd := &cobra.Command{
		Use:   "verify --agent NAME --registry PREFIX (--key cosign.pub | --certificate-identity ID --certificate-oidc-issuer URL)",
		Short: "Check an agent's published index, every platform image and their SBOM and provenance attestations",
		Long: `verify resolves <registry>/<agent>:<tag> and checks the index signature,
every platform manifest's signature, and each platform image's CycloneDX SBOM
and SLSA provenance attestations. Each failed check is one line; the exit
status is non-zero when any fails. It also prints the cosign commands that
check the same.`,
		Example: `  release verify --agent pi --registry ghcr.io/nothingnesses/agent-images \
    --certificate-identity https://github.com/nothingnesses/agent-images/.github/workflows/release.yml@refs/heads/main \
    --certificate-oidc-issuer https://token.actions.githubusercontent.com
  release verify --agent pi --registry 127.0.0.1:5000/agent-images --insecure --key cosign.pub`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := pf.policy("verify")
			if err != nil {
				return err
			}
			if agent == "" {
				return fmt.Errorf("name the agent to verify with --agent")
			}
			if registry == "" {
				if registry = defaultRegistry(); registry == "" {
					return fmt.Errorf("where is %s published? %s", agent, registryRequired)
				}
			}
			if err := checkRegistry(registry); err != nil {
				return err
			}
			var nameOpts []name.Option
			if insecure {
				nameOpts = append(nameOpts, name.Insecure)
			}
			ref, err := name.ParseReference(strings.TrimSuffix(registry, "/")+"/"+agent+":"+tag, nameOpts...)
			if err != nil {
				return fmt.Errorf("--registry %s --agent %s: %w", registry, agent, err)
			}
			rep, err := sign.Verify(cmd.Context(), ref, p)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s -> %s\n", ref, rep.Index.DigestStr())
			for _, c := range rep.Checks {
				fmt.Fprintln(out, c)
			}
			fmt.Fprintln(out, "\nThe same checks with cosign:")
			for _, c := range rep.Commands {
				fmt.Fprintln(out, "  "+c)
			}
			if failed := rep.Failed(); len(failed) > 0 {
				return &exitError{msg: fmt.Sprintf("verify %s: %d of %d checks failed", ref, len(failed), len(rep.Checks))}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&agent, "agent", "", "agent to verify")
	f.StringVar(&registry, "registry", "", "repository prefix the agent is published under (default under GitHub Actions: ghcr.io/<owner>/<repo>)")
	f.StringVar(&tag, "tag", "latest", "tag to verify")
	f.BoolVar(&insecure, "insecure", false, "allow a plain-HTTP registry")
	pf.register(cmd)
	return cmd
}
