package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign"

	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// TestSecretsNeverLeave plants known secrets everywhere a signed release
// takes them in: the registry password (in a Docker config), the cosign key
// material and its password, a token in a git+https override, a token-like
// local path in a path: override, and GITHUB_TOKEN. It then searches every
// line the release printed, release.json, the step summary, the step
// outputs and everything the registry holds for the agent (signatures, the
// SBOM and provenance attestations, manifests and configs) for each of
// them. Runs that fail on those inputs are searched too: their errors quote
// the references.
func TestSecretsNeverLeave(t *testing.T) {
	testenv.Require(t, "nix", "git", "docker-registry")
	testenv.Setenv(t)
	if testenv.RealInputs() {
		t.Skip("plants its secrets in overrides of the stand-in inputs")
	}
	const (
		regUser     = "releaser"
		regPassword = "REGISTRY-PASSWORD-4d1f0a"
		keyPassword = "COSIGN-PASSWORD-77e2b9"
		gitUser     = "x-access-token"
		gitToken    = "GIT-TOKEN-9c3a51"
		ghToken     = "ghp_PLANTEDGITHUBTOKEN0123456789abcdef"
	)
	dir := t.TempDir()
	reg := testenv.StartRegistry(t, testenv.WithBasicAuth(regUser, regPassword))
	dockerAuth := base64.StdEncoding.EncodeToString([]byte(regUser + ":" + regPassword))
	dockerConfig := filepath.Join(dir, "docker")
	writeFile(t, filepath.Join(dockerConfig, "config.json"), fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg, dockerAuth))

	keys, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte(keyPassword), nil })
	if err != nil {
		t.Fatal(err)
	}
	// The key's own lines, between its PEM markers, are secrets each.
	var keyLines []string
	for _, l := range strings.Split(string(keys.PrivateBytes), "\n") {
		if len(l) > 16 && !strings.HasPrefix(l, "-----") {
			keyLines = append(keyLines, l)
		}
	}

	standin := testenv.StandinOverrides(t)
	// llm-agents from a directory whose path looks like a token.
	tokenPath := filepath.Join(dir, "tok=ghp_FAKE", "x")
	copyTree(t, strings.TrimPrefix(standin["llm-agents"], "path:"), tokenPath)
	// nixpkgs from a git server over HTTPS that wants the token.
	gitURL := serveGit(t, strings.TrimPrefix(standin["nixpkgs"], "path:"), gitUser, gitToken)
	withToken := strings.Replace(gitURL, "https://", "git+https://"+gitUser+":"+gitToken+"@", 1)

	secrets := append([]string{regPassword, dockerAuth, keyPassword, gitToken, "ghp_FAKE", ghToken}, keyLines...)
	summary, outputs := filepath.Join(dir, "summary.md"), filepath.Join(dir, "outputs")
	env := []string{
		"DOCKER_CONFIG=" + dockerConfig,
		"COSIGN_PRIVATE_KEY=" + string(keys.PrivateBytes),
		"COSIGN_PASSWORD=" + keyPassword,
		"GITHUB_TOKEN=" + ghToken,
		"GITHUB_ACTIONS=true",
		"GITHUB_STEP_SUMMARY=" + summary,
		"GITHUB_OUTPUT=" + outputs,
		"GITHUB_REPOSITORY=acme/agent-images",
		"GITHUB_SHA=0123456789abcdef0123456789abcdef01234567",
		// git under nix talks to the test server's own certificate.
		"GIT_SSL_NO_VERIFY=true",
	}
	prefix := reg + "/acme/agent-images"
	releaseJSON := filepath.Join(dir, "release.json")
	args := []string{"--agent", "pi", "--push", "--registry", prefix, "--insecure", "--runtime", "none",
		"--key", "env://COSIGN_PRIVATE_KEY", "--output", releaseJSON, "--work-dir", filepath.Join(dir, "work"),
		"--flake", testenv.RepoRoot(t),
		"--override-input", "nixpkgs=" + withToken,
		"--override-input", "llm-agents=path:" + tokenPath,
		"--override-input", "llm-agents/nixpkgs=" + standin["llm-agents/nixpkgs"],
	}
	log, err := execRelease(t, env, args...)
	if err != nil {
		t.Fatalf("release %s: %v\n%s", strings.Join(args, " "), err, log)
	}
	places := map[string]string{"the release's output": log}
	for what, path := range map[string]string{"release.json": releaseJSON, "the step summary": summary, "the step outputs": outputs} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		places[what] = string(data)
	}
	if !strings.Contains(places["the step summary"], "| pi |") {
		t.Errorf("step summary = %q, want pi's row: the run did not write what this test searches", places["the step summary"])
	}

	// Everything the registry holds for the agent, signatures and
	// attestations with their payloads decoded.
	repo, err := name.NewRepository(prefix+"/pi", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	auth := remote.WithAuth(&authn.Basic{Username: regUser, Password: regPassword})
	stored, attestations := registryText(t, repo, auth)
	places["what the registry holds"] = stored
	for _, want := range []string{"https://slsa.dev/provenance/v1", "https://cyclonedx.org/bom", "flake-input:nixpkgs", "flake-input:llm-agents", "narHash"} {
		if !strings.Contains(attestations, want) {
			t.Errorf("the attestations in the registry lack %q: the search would miss them", want)
		}
	}
	// The overrides are recorded, by what was fetched and their public form.
	for _, want := range []string{`"override":"path:(local)"`, `"override":"` + strings.Replace(gitURL, "https://", "git+https://", 1) + `"`} {
		if !strings.Contains(attestations, want) {
			t.Errorf("the provenance lacks %s", want)
		}
	}

	// Runs that fail on the same references: a wrong token, a missing path.
	for _, bad := range [][]string{
		{"nixpkgs=" + strings.Replace(withToken, gitToken, gitToken+"-WRONG", 1), "llm-agents=path:" + tokenPath},
		{"nixpkgs=" + withToken, "llm-agents=path:" + tokenPath + "-missing"},
	} {
		badArgs := append(append([]string{}, args[:len(args)-6]...), "--override-input", bad[0], "--override-input", bad[1],
			"--override-input", "llm-agents/nixpkgs="+standin["llm-agents/nixpkgs"])
		out, err := execRelease(t, env, badArgs...)
		if err == nil {
			t.Errorf("release with --override-input %s %s succeeded, want it to fail", bad[0], bad[1])
		}
		places[fmt.Sprintf("the failing run with %s, %s", bad[0], bad[1])] = out
	}
	// The registry's own refusal must not echo a password put in --registry.
	out, _ := execRelease(t, env, "verify", "--agent", "pi", "--registry", regUser+":"+regPassword+"@"+prefix, "--insecure", "--key", "k.pub")
	places["release verify with credentials in --registry"] = out

	for where, text := range places {
		for _, secret := range secrets {
			if i := strings.Index(text, secret); i >= 0 {
				t.Errorf("%s holds the secret %q: …%s…", where, secret, text[max(0, i-80):min(len(text), i+len(secret)+40)])
			}
		}
	}
	if t.Failed() {
		t.Logf("release output:\n%s", log)
	}
}

// registryText is every manifest of repo and every small blob they name
// (configs, signatures, attestations; not image layers), with the payloads
// of signatures and attestations decoded, and the attestations' part of it.
func registryText(t *testing.T, repo name.Repository, opts ...remote.Option) (all, attestations string) {
	t.Helper()
	tags, err := remote.List(repo, opts...)
	if err != nil {
		t.Fatalf("listing %s: %v", repo, err)
	}
	var b, atts strings.Builder
	seen := map[string]bool{}
	var visit func(ref name.Reference, isAtt bool)
	visit = func(ref name.Reference, isAtt bool) {
		desc, err := remote.Get(ref, opts...)
		if err != nil {
			t.Fatalf("reading %s: %v", ref, err)
		}
		if seen[desc.Digest.String()] {
			return
		}
		seen[desc.Digest.String()] = true
		b.Write(desc.Manifest)
		var m struct {
			Manifests []v1.Descriptor `json:"manifests"`
			Config    *v1.Descriptor  `json:"config"`
			Layers    []v1.Descriptor `json:"layers"`
		}
		if err := json.Unmarshal(desc.Manifest, &m); err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		for _, child := range m.Manifests {
			visit(repo.Digest(child.Digest.String()), false)
		}
		blobs := m.Layers
		if m.Config != nil {
			blobs = append(blobs, *m.Config)
		}
		for _, l := range blobs {
			if l.Size > 1<<20 {
				continue // an image layer: built content, not metadata
			}
			layer, err := remote.Layer(repo.Digest(l.Digest.String()), opts...)
			if err != nil {
				t.Fatalf("blob %s of %s: %v", l.Digest, ref, err)
			}
			rc, err := layer.Compressed()
			if err != nil {
				t.Fatalf("blob %s of %s: %v", l.Digest, ref, err)
			}
			data, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			text := string(data)
			var envelope struct {
				Payload string `json:"payload"`
			}
			if json.Unmarshal(data, &envelope) == nil && envelope.Payload != "" {
				if p, err := base64.StdEncoding.DecodeString(envelope.Payload); err == nil {
					text += "\n" + string(p)
				}
			}
			b.WriteString(text + "\n")
			if isAtt {
				atts.WriteString(text + "\n")
			}
		}
	}
	for _, tag := range tags {
		visit(repo.Tag(tag), strings.HasSuffix(tag, ".att"))
	}
	return b.String(), atts.String()
}

// serveGit serves a copy of dir as the git repository /<base>.git over
// HTTPS (git http-backend), to user with token as password only, and
// returns its https:// URL without credentials.
func serveGit(t *testing.T, dir, user, token string) string {
	t.Helper()
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not installed")
	}
	root := t.TempDir()
	work := filepath.Join(root, "work")
	copyTree(t, dir, work)
	base := filepath.Base(dir)
	for _, args := range [][]string{
		// master: the branch Nix 2.8 fetches when the URL names none.
		{"-C", work, "init", "-q", "-b", "master"},
		{"-C", work, "add", "-A"},
		{"-C", work, "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-q", "-m", "stand-in"},
		{"clone", "-q", "--bare", work, filepath.Join(root, "srv", base+".git")},
	} {
		if out, err := exec.Command(gitBin, args...).CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	backend := &cgi.Handler{
		Path: gitBin,
		Args: []string{"http-backend"},
		Env:  []string{"GIT_PROJECT_ROOT=" + filepath.Join(root, "srv"), "GIT_HTTP_EXPORT_ALL=1"},
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != token {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/" + base + ".git"
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-r", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp -r %s %s: %v\n%s", from, to, err, out)
	}
}

// writeKeyPair writes a new cosign key pair, encrypted with password, to
// dir/cosign.key and dir/cosign.pub.
func writeKeyPair(t *testing.T, dir, password string) (key, pub string) {
	t.Helper()
	keys, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte(password), nil })
	if err != nil {
		t.Fatal(err)
	}
	key, pub = filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
	writeFile(t, key, string(keys.PrivateBytes))
	writeFile(t, pub, string(keys.PublicBytes))
	return key, pub
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
