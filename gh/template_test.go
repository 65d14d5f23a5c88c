package gh

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign"

	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// ownAction is how the template's workflow uses this repository's Action:
// by its release tag, because a template cannot pin the commit that will
// contain it. The act tests map it to the checkout under test.
const ownAction = "nothingnesses/agent-images@v1"

// templateWorkflow is the template's workflow, relative to the template.
var templateWorkflow = filepath.Join(".github", "workflows", "agent-images.yml")

// templateFiles are the files of the default template, by path relative to it.
func templateFiles(t *testing.T) map[string][]byte {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(t), "templates", "default")
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[rel], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("templates/default has %d files, want flake.nix and %s", len(files), templateWorkflow)
	}
	return files
}

// docs/your-own-images.md shows the template's files whole: what a reader
// copies is what the tests instantiate and run.
func TestDocsShowTheTemplate(t *testing.T) {
	page, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "docs", "your-own-images.md"))
	if err != nil {
		t.Fatal(err)
	}
	lang := map[string]string{".nix": "nix", ".yml": "yaml"}
	for rel, content := range templateFiles(t) {
		block := "```" + lang[filepath.Ext(rel)] + "\n# " + filepath.ToSlash(rel) + "\n" + string(content) + "```\n"
		if !bytes.Contains(page, []byte(block)) {
			t.Errorf("docs/your-own-images.md lacks templates/default/%s verbatim, as a block starting with the comment \"# %s\"", rel, filepath.ToSlash(rel))
		}
	}
}

// The template's workflow keeps this repository's rules: read-only unless a
// job needs more, nothing spliced into a script, every other action pinned
// (remoteActions checks the pins and that each has an act stub).
func TestTemplateWorkflowPolicy(t *testing.T) {
	wf := string(templateFiles(t)[templateWorkflow])
	if !regexp.MustCompile(`(?m)^permissions:\n  contents: read\n`).MatchString(wf) {
		t.Errorf("template workflow: top-level permissions are not exactly contents: read")
	}
	for i, line := range strings.Split(wf, "\n") {
		if strings.Contains(line, "run:") && strings.Contains(line, "${{") {
			t.Errorf("template workflow:%d: expression inside run: %s", i+1, strings.TrimSpace(line))
		}
		if m := usesLine.FindStringSubmatch(line); m != nil && strings.HasPrefix(m[1], "nothingnesses/") && m[1] != ownAction {
			t.Errorf("template workflow:%d: uses %s, want %s", i+1, m[1], ownAction)
		}
	}
	// Each write permission where it is needed, and only there.
	for perm, want := range map[string]int{"packages: write": 2, "id-token: write": 2, "contents: write": 0} {
		if got := strings.Count(wf, perm); got != want {
			t.Errorf("template workflow grants %q %d times, want %d (build and merge push and sign)", perm, got, want)
		}
	}
	pinned := map[string]bool{}
	for _, u := range remoteActions(t) {
		pinned[u] = true
	}
	for _, m := range usesLine.FindAllStringSubmatch(wf, -1) {
		if u := m[1]; u != ownAction && !pinned[u] {
			t.Errorf("template workflow uses %s, which remoteActions did not check", u)
		}
	}
}

// TestActTemplate is a new user of the template: `nix flake init -t` with
// this repository, the image built and run locally the way the README says,
// the workflow linted by actionlint and run by act as a v* tag push against
// a local registry (key-signed: act has no OIDC token), and what it pushed
// verified with the cosign CLI.
func TestActTemplate(t *testing.T) {
	notUnderAct(t)
	if testing.Short() {
		t.Skip("end-to-end workflow run: skipped with -short")
	}
	testenv.Require(t, "nix", "podman", "git", "go", "docker-registry")
	testenv.Setenv(t)
	cosignCLI := testenv.CosignCLI(t, testenv.CosignVersion)
	actionlint := tool(t, "github.com/rhysd/actionlint/cmd/actionlint", actionlintVersion)
	reg := testenv.StartRegistry(t)
	repo := repoCopy(t)
	overrides := testenv.StandinOverrides(t)

	// nix flake init evaluates this flake, and so must lock its inputs: to
	// the stand-ins, committed, since nothing here can be fetched.
	if len(overrides) > 0 {
		lock := []string{"flake", "lock"}
		for n, ref := range overrides {
			lock = append(lock, "--override-input", n, ref)
		}
		runIn(t, repo, "nix", lock...)
		runIn(t, repo, "git", "add", "flake.lock")
		runIn(t, repo, "git", "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-q", "-m", "lock the stand-ins")
	}

	dir := filepath.Join(t.TempDir(), "my-images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	runIn(t, dir, "nix", "flake", "init", "-t", "git+file://"+repo)
	for rel, want := range templateFiles(t) {
		if got, err := os.ReadFile(filepath.Join(dir, rel)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("nix flake init gave %s = %v, want templates/default/%s", rel, err, rel)
		}
	}
	runIn(t, dir, "git", "init", "-q", "-b", "main")
	runIn(t, dir, "git", "remote", "add", "origin", "https://github.com/acme/my-images")
	runIn(t, dir, "git", "add", "-A")
	runIn(t, dir, "git", "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-q", "-m", "nix flake init")

	if out, err := runOut(dir, actionlint, "-no-color"); err != nil {
		t.Errorf("actionlint on the template's workflow = %v\n%s", err, out)
	}

	// Inputs: agent-images is this checkout; nixpkgs and llm-agents, the stand-ins.
	inputs := map[string]string{"agent-images": "git+file://" + repo}
	for n, ref := range overrides {
		inputs[n] = ref
	}
	var nixArgs, releaseArgs []string
	for n, ref := range inputs {
		nixArgs = append(nixArgs, "--override-input", n, ref)
		releaseArgs = append(releaseArgs, "--override-input", n+"="+ref)
	}

	// Build, load and run it here, as the README's first steps do. Debian's
	// podman loads only uncompressed archives, hence the gunzip.
	runIn(t, dir, "nix", append([]string{"build", ".#my-pi"}, nixArgs...)...)
	runIn(t, dir, "sh", "-c", "gunzip -c result | podman load")
	t.Cleanup(func() { _ = exec.Command("podman", "rmi", "-f", "localhost/my-pi:latest").Run() })
	if out, err := runOut(dir, "podman", "run", "--rm", "localhost/my-pi:latest", "--version"); err != nil || !strings.Contains(out, "pi ") {
		t.Errorf("podman run localhost/my-pi:latest --version = %q, %v; want pi's version", out, err)
	}
	if err := os.Remove(filepath.Join(dir, "result")); err != nil {
		t.Fatal(err)
	}

	// Release it with the workflow: the matrix, a build per system on its
	// runner label, the merge that signs and tags.
	const password = "template-password"
	keys, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte(password), nil })
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(t.TempDir(), "cosign.pub")
	if err := os.WriteFile(pub, keys.PublicBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	prefix := reg + "/acme/my-images"
	event := filepath.Join(t.TempDir(), "tag.json")
	if err := os.WriteFile(event, []byte(`{"ref":"refs/tags/v0.1.0","repository":{"default_branch":"main"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	run := runAct(t, dir, "push", filepath.Base(templateWorkflow),
		"-e", event,
		"--local-repository", ownAction+"="+repo,
		"--var", "RELEASE_REGISTRY="+prefix,
		"--var", "RELEASE_INSECURE=true",
		"--var", "RELEASE_SIGN_KEY=env://COSIGN_PRIVATE_KEY",
		"--var", "RELEASE_EXTRA_ARGS="+strings.Join(releaseArgs, " "),
		"-s", "COSIGN_PRIVATE_KEY="+string(keys.PrivateBytes),
		"-s", "COSIGN_PASSWORD="+password,
		"--env", "ACT_ARTIFACTS="+t.TempDir(),
	)
	want := map[string]string{
		"matrix": "success", "build my-pi x86_64-linux": "success", "build my-pi aarch64-linux": "success", "merge my-pi": "success",
	}
	if got := run.jobs(); !equalMaps(got, want) || run.err != nil {
		t.Fatalf("act push v0.1.0 on the template: jobs %v (%v), want %v\n%s", got, run.err, want, humanLog(run))
	}
	digests := run.outputs("merge my-pi", "digests")
	var byAgent map[string]string
	if len(digests) == 0 || json.Unmarshal([]byte(digests[len(digests)-1]), &byAgent) != nil || byAgent["my-pi"] == "" {
		t.Fatalf("merge digests output = %q, want my-pi's index digest", digests)
	}
	index := byAgent["my-pi"]
	assertIndex(t, prefix+"/my-pi", index, "latest", "v0.1.0")

	// The cosign CLI accepts the index, and each platform's signature, SBOM
	// and provenance.
	idx, err := remote.Index(mustDigest(t, prefix+"/my-pi@"+index))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	subjects := [][]string{{"verify", prefix + "/my-pi@" + index}}
	for _, m := range im.Manifests {
		p := prefix + "/my-pi@" + m.Digest.String()
		subjects = append(subjects, []string{"verify", p},
			[]string{"verify-attestation", "--type", "cyclonedx", p},
			[]string{"verify-attestation", "--type", "slsaprovenance1", p})
	}
	for _, s := range subjects {
		args := append([]string{s[0], "--key", pub, "--insecure-ignore-tlog=true"}, s[1:]...)
		if out, err := testenv.Cosign(t, cosignCLI, args...); err != nil {
			t.Errorf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

func runIn(t *testing.T, dir, prog string, args ...string) {
	t.Helper()
	if out, err := runOut(dir, prog, args...); err != nil {
		t.Fatalf("%s %s in %s: %v\n%s", prog, strings.Join(args, " "), dir, err, out)
	}
}

func runOut(dir, prog string, args ...string) (string, error) {
	cmd := exec.Command(prog, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}
