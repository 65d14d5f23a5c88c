package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/nothingnesses/agent-images/sign"
)

// verifyRelease checks one published release; tests swap it to see what
// verify would check without Sigstore's network.
var verifyRelease = sign.Verify

func newVerifyCmd() *cobra.Command {
	var (
		agent, tag string
		registries []string
		insecure   bool
		pf         policyFlags
	)
	cmd := &cobra.Command{
		Use:   "verify --agent NAME [--registry PREFIX] (--key cosign.pub | --repository OWNER/REPO --workflow FILE.yml[@REF] | --certificate-identity ID --certificate-oidc-issuer URL)",
		Short: "Check an agent's published index, every platform image and their SBOM and provenance attestations",
		Long: `verify resolves <registry>/<agent>:<tag> and checks the index signature,
every platform manifest's signature, and each platform image's SBOM and SLSA
provenance attestations. Each failed check is one line; the exit status is
non-zero when any fails. It also prints the cosign commands that check the
same.

Keyless, the signer is one workflow at one ref, as GitHub's certificate
names it: https://github.com/OWNER/REPO/.github/workflows/FILE@REF. Give it
whole with --certificate-identity, or let --repository and --workflow make it
(the repository defaults to $GITHUB_REPOSITORY, else the git remote origin
here; without --workflow, under Actions, the running workflow's
$GITHUB_WORKFLOW_REF is taken). The issuer is then GitHub's, and the
registry defaults to ghcr.io/<owner>/<repo>.

Given several registries (--registry repeated, or separated with commas), it
checks each, and also that the tag names the same index in every one: a
release to several registries publishes one index everywhere.`,
		Example: `  release verify --agent pi --repository nothingnesses/agent-images --workflow release.yml
  release verify --agent my-pi --repository acme/my-images --workflow agent-images.yml@refs/tags/v1.2.0
  release verify --agent pi --registry 127.0.0.1:5000/agent-images --insecure --key cosign.pub
  release verify --agent pi --registry ghcr.io/me/agent-images,docker.io/me --key cosign.pub`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := pf.policy("verify")
			if err != nil {
				return err
			}
			if agent == "" {
				return fmt.Errorf("name the agent to verify with --agent")
			}
			if len(registries) == 0 && defaultRegistry() == "" {
				// The signing repository's GHCR prefix: where its workflow pushes.
				if r := pf.signer.registry(); r != "" {
					registries = []string{r}
				}
			}
			registries, err := registriesOrDefault(registries, fmt.Sprintf("where is %s published?", agent))
			if err != nil {
				return err
			}
			var refs []name.Reference
			for _, registry := range registries {
				repo, err := repository(registry, agent, insecure)
				if err != nil {
					return err
				}
				refs = append(refs, repo.Tag(tag))
			}
			return verifyEach(cmd, refs, p)
		},
	}
	f := cmd.Flags()
	f.StringVar(&agent, "agent", "", "agent to verify")
	f.StringSliceVar(&registries, "registry", nil, "repository prefix the agent is published under (default under GitHub Actions: ghcr.io/<owner>/<repo>); repeat it, or separate with commas, to check every registry a release went to")
	f.StringVar(&tag, "tag", "latest", "tag to verify")
	f.BoolVar(&insecure, "insecure", false, "allow a plain-HTTP registry")
	pf.register(cmd)
	return cmd
}

// writeVerify prints one registry's checks and the cosign commands that
// make the same.
func writeVerify(out io.Writer, rep *sign.Report) {
	fmt.Fprintf(out, "%s -> %s\n", rep.Reference, rep.Index.DigestStr())
	for _, c := range rep.Checks {
		fmt.Fprintln(out, c)
	}
	fmt.Fprintln(out, "\nThe same checks with cosign:")
	for _, c := range rep.Commands {
		fmt.Fprintln(out, "  "+c)
	}
}

// verifyEach verifies the same agent and tag in each registry on its own:
// of several, one that cannot be read is a failure of that registry and
// the others are still checked. The tag must name one index everywhere.
func verifyEach(cmd *cobra.Command, refs []name.Reference, p sign.Policy) error {
	out := cmd.OutOrStdout()
	var failed []string
	var first *sign.Report
	for i, ref := range refs {
		if i > 0 {
			fmt.Fprintln(out)
		}
		rep, err := verifyRelease(cmd.Context(), ref, p)
		if err != nil && len(refs) == 1 {
			return err
		}
		if err != nil {
			fmt.Fprintf(out, "%s: FAIL: %v\n", ref, err)
			failed = append(failed, fmt.Sprintf("%s: %v", ref.Context(), err))
			continue
		}
		writeVerify(out, rep)
		if n := len(rep.Failed()); n > 0 {
			failed = append(failed, fmt.Sprintf("%s: %d of %d checks failed", ref.Context(), n, len(rep.Checks)))
		}
		if first == nil {
			first = rep
		} else if rep.Index.DigestStr() != first.Index.DigestStr() {
			msg := fmt.Sprintf("%s -> %s, but %s -> %s: the registries hold different releases (a registry that failed a release catches up when it is run again)",
				ref, rep.Index.DigestStr(), first.Reference, first.Index.DigestStr())
			fmt.Fprintln(out, "FAIL: "+msg)
			failed = append(failed, msg)
		}
	}
	if len(failed) > 0 {
		return &exitError{msg: fmt.Sprintf("verify in %d registries: %s", len(refs), strings.Join(failed, "; "))}
	}
	if len(refs) > 1 {
		fmt.Fprintf(out, "\n%s is %s in all %d registries, and verifies in each\n", refs[0].Identifier(), first.Index.DigestStr(), len(refs))
	}
	return nil
}
