package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/nothingnesses/agent-images/sign"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// docBlock returns the command lines of the first ```sh block after
// marker in the Markdown page (a path from the repository root),
// continuation lines joined.
func docBlock(t *testing.T, page, marker string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), page))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), marker)
	if !ok {
		t.Fatalf("%s has no %q", page, marker)
	}
	_, rest, ok = strings.Cut(rest, "```sh\n")
	if !ok {
		t.Fatalf("%s has no sh block after %q", page, marker)
	}
	block, _, _ := strings.Cut(rest, "```")
	var lines []string
	for _, l := range strings.Split(strings.ReplaceAll(block, "\\\n", " "), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	return lines
}

// consumerPage is the page whose step 4 TestConsumerDocCommands runs.
const consumerPage = "docs/your-own-images.md"

// TestConsumerDocCommands runs step 4 of docs/your-own-images.md as written,
// for the repository acme/my-images, from a workstation (no Actions
// environment, no git remote). The identity release verify pins must be the
// one a release signs as in that repository's template workflow: keyless
// certificates of GitHub Actions, and this tool's provenance builder id,
// name the workflow at its ref (GITHUB_WORKFLOW_REF). Verifying a keyless
// signature needs Sigstore's network, so verify's check itself is swapped
// for one that records what it was asked; policy runs for real, with the
// test's Fulcio CA and Rekor key in place of Sigstore's.
func TestConsumerDocCommands(t *testing.T) {
	for _, k := range []string{"GITHUB_ACTIONS", "GITHUB_REPOSITORY", "GITHUB_WORKFLOW_REF", "GITHUB_SERVER_URL"} {
		t.Setenv(k, "")
	}
	pullpolicyData, err := filepath.Abs(filepath.Join("..", "..", "pullpolicy", "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	workflows, _ := filepath.Glob(filepath.Join(testenv.RepoRoot(t), "templates", "default", ".github", "workflows", "*.yml"))
	if len(workflows) != 1 {
		t.Fatalf("the template has workflows %v, want one", workflows)
	}
	t.Chdir(t.TempDir())

	// What the template's workflow signs as in acme/my-images: the builder
	// id is the keyless certificate's identity.
	t.Setenv("GITHUB_WORKFLOW_REF", "acme/my-images/.github/workflows/"+filepath.Base(workflows[0])+"@refs/heads/main")
	signedAs := sign.BuilderIDFromEnv()
	t.Setenv("GITHUB_WORKFLOW_REF", "")

	var verified []string
	verifyRelease = func(_ context.Context, ref name.Reference, p sign.Policy) (*sign.Report, error) {
		verified = append(verified, ref.String()+" "+p.CertIdentity+" "+p.CertOIDCIssuer)
		return &sign.Report{Reference: ref}, nil
	}
	t.Cleanup(func() { verifyRelease = sign.Verify })

	commands := docBlock(t, consumerPage, "## 4. Pull with signature enforcement")
	if len(commands) != 2 {
		t.Fatalf("docs step 4 commands = %q, want release verify and release policy", commands)
	}
	for _, c := range commands {
		args := strings.Fields(strings.ReplaceAll(c, "<owner>/<repo>", "acme/my-images"))
		if args[0] != "release" {
			t.Fatalf("docs step 4 command %q does not run release", c)
		}
		if args[1] == "policy" {
			args = append(args, "--fulcio-roots", filepath.Join(pullpolicyData, "fulcio-roots.pem"), "--rekor-key", filepath.Join(pullpolicyData, "rekor.pub"))
		}
		if out, err := run(t, args[1:]...); err != nil {
			t.Fatalf("%s = %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	want := "ghcr.io/acme/my-images/my-pi:latest " + signedAs + " https://token.actions.githubusercontent.com"
	if len(verified) != 1 || verified[0] != want {
		t.Errorf("release verify checked %q, want %q: the registry, and the identity the template's workflow signs as", verified, want)
	}
	policy, err := os.ReadFile(filepath.Join("policy", "policy.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`"ghcr.io/acme/my-images"`, `"buildSignerURI": "` + signedAs + `"`, `"oidcIssuer": "https://token.actions.githubusercontent.com"`} {
		if !strings.Contains(string(policy), w) {
			t.Errorf("policy.json lacks %s:\n%s", w, policy)
		}
	}
}
