package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nothingnesses/agent-images/pullpolicy"
)

func newPolicyCmd() *cobra.Command {
	var (
		registry, key, base, out string
		w                        pullpolicy.Workflow
		signer                   signerFlags
		fulcioRoots, rekorKey    string
	)
	cmd := &cobra.Command{
		Use:   "policy [--registry PREFIX] [--key cosign.pub | --repository OWNER/REPO --workflow FILE.yml[@REF] | --certificate-identity ID] --out DIR",
		Short: "Write a trust policy that lets Podman, Buildah, Skopeo and CRI-O pull only signed images",
		Long: `policy writes DIR/policy.json (containers-policy.json(5)) and
DIR/registries.d/<prefix>.yaml (containers-registries.d(5), with
use-sigstore-attachments: true). Together they make Podman, Buildah, Skopeo
and CRI-O refuse any image under --registry that this project's release did
not sign, then it prints where to put them.

Keyless (without --key): the signature must come from a Fulcio certificate
for --certificate-identity issued through --certificate-oidc-issuer (GitHub
Actions' by default), logged in Rekor. The identity is the workflow that
signs, https://github.com/OWNER/REPO/.github/workflows/FILE@REF: give it
whole, or let --repository and --workflow make it (the repository defaults to
$GITHUB_REPOSITORY, else the git remote origin here; without --workflow,
under Actions, the running workflow's $GITHUB_WORKFLOW_REF). --registry
defaults to that repository's ghcr.io/<owner>/<repo>. The Fulcio CA and the
Rekor key come from Sigstore's TUF repository, as for cosign verify, unless
--fulcio-roots and --rekor-key name files. Verifying a workflow identity needs
a containers/image that knows "buildSignerURI", which no release has yet
(see docs/trust.md): until then such a policy makes every pull fail.

With --key, the signature must be made by that public key (a release signed
with --key); Podman 4.2 and later verify these.

Without --base the policy rejects every other registry and accepts local
archives and storage; with --base /etc/containers/policy.json the prefix is
added to that policy and everything else is kept.`,
		Example: `  release policy --repository nothingnesses/agent-images --workflow release.yml --out policy
  release policy --repository acme/my-images --workflow agent-images.yml --out policy
  release policy --registry 127.0.0.1:5000/agent-images --key cosign.pub --base /etc/containers/policy.json --out policy`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("say where to write the files with --out DIR")
			}
			if registry == "" {
				if registry = signer.registry(); registry == "" {
					return fmt.Errorf("which registry prefix must be signed? pass --registry, or --repository OWNER/REPO for its ghcr.io/<owner>/<repo>")
				}
			}
			var trusted *pullpolicy.Signer
			var err error
			if key != "" {
				if w.Identity != "" {
					return fmt.Errorf("--key and --certificate-identity name two different signers: give one")
				}
				if signer.workflow != "" {
					return fmt.Errorf("--key and --workflow name two different signers: give one")
				}
				pem, err := os.ReadFile(key)
				if err != nil {
					return fmt.Errorf("--key: %w", err)
				}
				if trusted, err = pullpolicy.PublicKey(pem); err != nil {
					return fmt.Errorf("--key %s: %w", key, err)
				}
			} else {
				if w.Identity == "" {
					if w.Identity, err = signer.identity(); err != nil {
						return err
					}
					if w.Identity == "" {
						return fmt.Errorf("whose signatures count? pass --key cosign.pub, or --repository OWNER/REPO --workflow FILE.yml[@REF] " +
							"(the workflow that signs keyless), or --certificate-identity https://github.com/OWNER/REPO/.github/workflows/FILE@REF")
					}
				}
				if (fulcioRoots == "") != (rekorKey == "") {
					return fmt.Errorf("give --fulcio-roots and --rekor-key together (or neither, to use Sigstore's)")
				}
				if fulcioRoots != "" {
					if w.FulcioRoots, err = os.ReadFile(fulcioRoots); err != nil {
						return fmt.Errorf("--fulcio-roots: %w", err)
					}
					k, err := os.ReadFile(rekorKey)
					if err != nil {
						return fmt.Errorf("--rekor-key: %w", err)
					}
					w.RekorKeys = [][]byte{k}
				}
				if trusted, err = pullpolicy.KeylessWorkflow(cmd.Context(), w); err != nil {
					if fulcioRoots == "" {
						return fmt.Errorf("%w; offline, give --fulcio-roots and --rekor-key", err)
					}
					return err
				}
			}
			var b []byte
			if base != "" {
				if b, err = os.ReadFile(base); err != nil {
					return fmt.Errorf("--base: %w", err)
				}
			}
			files, err := pullpolicy.Generate(registry, trusted, b)
			if err != nil {
				return err
			}
			policy, reg, err := files.Write(out)
			if err != nil {
				return err
			}
			o := cmd.OutOrStdout()
			fmt.Fprintf(o, "%s accepts images under %s only when signed by %s.\n", policy, registry, trusted)
			fmt.Fprintf(o, "%s makes Podman, Buildah, Skopeo and CRI-O read those signatures from the registry.\n", reg)
			for _, l := range pullpolicy.Locations {
				fmt.Fprintf(o, "\n%s:\n  %s -> %s\n  %s -> %s/%s\n  %s\n", l.For, policy, l.Policy, reg, l.RegistriesD, files.RegistriesDName, l.Note)
			}
			if files.Caveat != "" {
				fmt.Fprintf(o, "\nBefore you install them: %s\n", files.Caveat)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&registry, "registry", "", "registry prefix whose images must be signed (default ghcr.io/<owner>/<repo> of the signing repository)")
	f.StringVar(&key, "key", "", "public key (PEM) of a release signed with --key, instead of the keyless workflow identity")
	f.StringVar(&w.Identity, "certificate-identity", "", "keyless: the workflow file at its ref that must have signed (default from --repository and --workflow)")
	f.StringVar(&w.Issuer, "certificate-oidc-issuer", pullpolicy.GitHubIssuer, "keyless: the OIDC issuer of that identity")
	f.StringVar(&fulcioRoots, "fulcio-roots", "", "keyless: PEM file of the Fulcio CA certificates (default: Sigstore's, from its TUF repository)")
	f.StringVar(&rekorKey, "rekor-key", "", "keyless: PEM file of the Rekor public key (default: Sigstore's)")
	f.StringVar(&base, "base", "", "existing policy.json to add the registry to (e.g. /etc/containers/policy.json); default: a new policy that rejects other registries")
	f.StringVar(&out, "out", "", "directory to write policy.json and registries.d/ into (existing files are never overwritten)")
	signer.register(cmd)
	return cmd
}
