package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nothingnesses/agent-images/flake"
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
