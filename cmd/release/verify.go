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
		p                    sign.Policy
		ignoreTlog           string
		patterns             []string
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
			if len(patterns) > 0 {
				return fmt.Errorf("%s: release verify pins the exact signer and accepts no pattern (one that matches "+
					"more than the release workflow accepts a signature by anyone); pass --certificate-identity with the signing "+
					"workflow's URI at its ref (release.json's verifyCommand names it) and --certificate-oidc-issuer", strings.Join(patterns, ", "))
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
			switch ignoreTlog {
			case "": // signatures made with a key skip Rekor unless --tlog-upload
				p.IgnoreTlog = p.Key != ""
			case "true", "false":
				p.IgnoreTlog = ignoreTlog == "true"
			default:
				return fmt.Errorf("--insecure-ignore-tlog=%s: want true or false", ignoreTlog)
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
	f.StringVar(&p.Key, "key", "", "public key the release was signed with: a file, env://VAR or a KMS URI")
	f.StringVar(&p.CertIdentity, "certificate-identity", "", "keyless: the signing workflow, e.g. https://github.com/OWNER/REPO/.github/workflows/release.yml@refs/heads/main")
	f.StringVar(&p.CertOIDCIssuer, "certificate-oidc-issuer", "", "keyless: the OIDC issuer, https://token.actions.githubusercontent.com for GitHub Actions")
	f.StringVar(&ignoreTlog, "insecure-ignore-tlog", "", "accept signatures without a transparency log entry (default: true with --key, false keyless)")
	f.Lookup("insecure-ignore-tlog").NoOptDefVal = "true"
	// cosign's pattern flags are recognised only to refuse them by name.
	for _, flag := range []string{"certificate-identity-regexp", "certificate-oidc-issuer-regexp"} {
		f.Var(&refusedFlag{name: flag, seen: &patterns}, flag, "refused: the signer is pinned exactly")
		_ = f.MarkHidden(flag)
	}
	return cmd
}

// refusedFlag is a flag that is parsed only so that using it fails with a
// clear reason rather than "unknown flag".
type refusedFlag struct {
	name string
	seen *[]string
}

func (r *refusedFlag) String() string { return "" }
func (r *refusedFlag) Type() string   { return "string" }
func (r *refusedFlag) Set(string) error {
	*r.seen = append(*r.seen, "--"+r.name)
	return nil
}
