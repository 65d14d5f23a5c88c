package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/pullpolicy"
	"github.com/nothingnesses/agent-images/sign"
)

// defaultRef is the ref a workflow is taken to run at when --workflow names
// none: the default branch, where the nightly and a dispatch run.
const defaultRef = "refs/heads/main"

// signerFlags name the repository and workflow that sign a release keyless.
// A GitHub Actions certificate names the workflow file at the ref that ran
// it, https://github.com/OWNER/REPO/.github/workflows/FILE@REF, whichever
// repository that is: this one, or a consumer's releasing its own images.
type signerFlags struct {
	repository string
	workflow   string
}

func (f *signerFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.repository, "repository", "", "keyless: the repository whose workflow signed, OWNER/REPO (default $GITHUB_REPOSITORY, else the git remote origin here)")
	fs.StringVar(&f.workflow, "workflow", "", "keyless: the workflow file that signed, FILE.yml[@REF] under .github/workflows (default the running workflow, $GITHUB_WORKFLOW_REF; REF defaults to "+defaultRef+")")
}

// given reports whether a flag names the signer.
func (f *signerFlags) given() bool { return f.repository != "" || f.workflow != "" }

// repo is the repository whose workflow signs: --repository, else the one
// Actions runs in, else the git remote origin of the working directory when
// it is on GitHub. Empty when none is known.
func (f *signerFlags) repo() string {
	if f.repository != "" {
		return strings.Trim(f.repository, "/")
	}
	if r := os.Getenv("GITHUB_REPOSITORY"); r != "" {
		return r
	}
	u, ok := strings.CutPrefix(flake.Flake{Ref: "."}.Origin(), "https://github.com/")
	if !ok {
		return ""
	}
	return u
}

// identity is the certificate identity of the signing workflow, or "" when
// nothing names a workflow. A workflow without a repository to put it in is
// an error that says what to pass.
func (f *signerFlags) identity() (string, error) {
	server, repo := githubServer(), f.repo()
	if f.workflow == "" {
		// The running workflow, when it is of that repository: under
		// Actions, what `release` signs with is this very identity.
		ref := os.Getenv("GITHUB_WORKFLOW_REF")
		if ref == "" || (repo != "" && !strings.HasPrefix(ref, repo+"/")) {
			return "", nil
		}
		return server + "/" + ref, nil
	}
	if repo == "" {
		return "", fmt.Errorf("--workflow %s: which repository's? pass --repository OWNER/REPO", f.workflow)
	}
	if strings.Count(repo, "/") != 1 {
		return "", fmt.Errorf("--repository %s: want OWNER/REPO", repo)
	}
	file, ref, ok := strings.Cut(strings.TrimPrefix(f.workflow, ".github/workflows/"), "@")
	if !ok {
		ref = defaultRef
	}
	if !strings.HasPrefix(ref, "refs/") {
		return "", fmt.Errorf("--workflow %s: the ref after @ is a full ref, refs/heads/BRANCH or refs/tags/TAG", f.workflow)
	}
	if strings.Contains(file, "/") || !(strings.HasSuffix(file, ".yml") || strings.HasSuffix(file, ".yaml")) {
		return "", fmt.Errorf("--workflow %s: want the file name under .github/workflows, e.g. release.yml", f.workflow)
	}
	return server + "/" + repo + "/.github/workflows/" + file + "@" + ref, nil
}

// registry is the GHCR prefix of the signing repository's images, or ""
// when no repository is known.
func (f *signerFlags) registry() string { return ghcrPrefix(f.repo()) }

// policyFlags say whose signatures count, for the commands that check them
// (verify, diff).
type policyFlags struct {
	p          sign.Policy
	signer     signerFlags
	ignoreTlog string
	patterns   []string
}

func (f *policyFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.p.Key, "key", "", "public key the release was signed with: a file, env://VAR or a KMS URI")
	fs.StringVar(&f.p.CertIdentity, "certificate-identity", "", "keyless: the signing workflow, e.g. https://github.com/OWNER/REPO/.github/workflows/release.yml@refs/heads/main")
	fs.StringVar(&f.p.CertOIDCIssuer, "certificate-oidc-issuer", "", "keyless: the OIDC issuer, https://token.actions.githubusercontent.com for GitHub Actions")
	fs.StringVar(&f.ignoreTlog, "insecure-ignore-tlog", "", "accept signatures without a transparency log entry (default: true with --key, false keyless)")
	fs.Lookup("insecure-ignore-tlog").NoOptDefVal = "true"
	f.signer.register(cmd)
	// cosign's pattern flags are recognised only to refuse them by name.
	for _, flag := range []string{"certificate-identity-regexp", "certificate-oidc-issuer-regexp"} {
		fs.Var(&refusedFlag{name: flag, seen: &f.patterns}, flag, "refused: the signer is pinned exactly")
		_ = fs.MarkHidden(flag)
	}
}

// given reports whether any flag names a signer.
func (f *policyFlags) given() bool {
	return f.p.Key != "" || f.p.CertIdentity != "" || f.p.CertOIDCIssuer != "" || len(f.patterns) > 0 || f.signer.given()
}

// policy is the Policy the flags describe. Patterns are refused: one that
// matches more than the release workflow accepts a signature by anyone.
func (f *policyFlags) policy(cmd string) (sign.Policy, error) {
	p := f.p
	if len(f.patterns) > 0 {
		return p, fmt.Errorf("%s: release %s pins the exact signer and accepts no pattern (one that matches "+
			"more than the release workflow accepts a signature by anyone); pass --certificate-identity with the signing "+
			"workflow's URI at its ref (release.json's verifyCommand names it) and --certificate-oidc-issuer", strings.Join(f.patterns, ", "), cmd)
	}
	if p.Key == "" && p.CertIdentity == "" {
		// Keyless, by the workflow that signs: named by --repository and
		// --workflow, or the running one under Actions.
		id, err := f.signer.identity()
		if err != nil {
			return p, err
		}
		if id != "" {
			p.CertIdentity = id
			if p.CertOIDCIssuer == "" {
				p.CertOIDCIssuer = pullpolicy.GitHubIssuer
			}
		}
	} else if f.signer.workflow != "" {
		return p, fmt.Errorf("--workflow derives the keyless identity: give it or --key or --certificate-identity, not both")
	}
	switch f.ignoreTlog {
	case "": // signatures made with a key skip Rekor unless --tlog-upload
		p.IgnoreTlog = p.Key != ""
	case "true", "false":
		p.IgnoreTlog = f.ignoreTlog == "true"
	default:
		return p, fmt.Errorf("--insecure-ignore-tlog=%s: want true or false", f.ignoreTlog)
	}
	return p, p.Validate()
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
