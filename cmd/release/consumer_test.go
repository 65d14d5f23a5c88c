package main

import (
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/smoke"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// TestConsumerFlakeReleases is a user of agent-images in their own
// repository: a fresh directory outside this one holds a flake whose image
// has its own name, user, directories, wrapper program, environment and
// nix-ld, and another image that opts out. From that directory, as on a
// workstation, release lists only the first, releases it with --push to a
// local registry under the consumer's repository, signed with a key, and
// both release verify and the cosign CLI accept what was pushed. The smoke
// test holds the image to its own options: to our defaults it would fail.
func TestConsumerFlakeReleases(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end release: skipped with -short")
	}
	testenv.Require(t, "nix", "podman", "git", "docker-registry")
	testenv.Setenv(t)
	cosign := testenv.CosignCLI(t, testenv.CosignVersion)
	// A workstation, not a workflow: no default registry, the source is the
	// flake's git origin.
	for _, k := range []string{"GITHUB_ACTIONS", "GITHUB_REPOSITORY", "GITHUB_SHA", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"} {
		t.Setenv(k, "")
	}
	reg := testenv.StartRegistry(t)
	root := testenv.RepoRoot(t)
	dir := filepath.Join(t.TempDir(), "my-images")
	flakeNix, err := os.ReadFile(filepath.Join("testdata", "consumer", "flake.nix"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "flake.nix"), flakeNix, 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "init", "-q", "-b", "main")
	git(t, dir, "remote", "add", "origin", "git@github.com:acme/my-images.git")
	git(t, dir, "add", "flake.nix")
	git(t, dir, "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-q", "-m", "my images")
	t.Chdir(dir)

	// The inputs point at this checkout and the stand-ins.
	overrides := testenv.StandinOverrides(t)
	overrides["agent-images"] = "path:" + root
	var inputs []string
	for n, ref := range overrides {
		inputs = append(inputs, "--override-input", n+"="+ref)
	}

	out, err := run(t, append([]string{"matrix"}, inputs...)...)
	if err != nil {
		t.Fatalf("release matrix = %v\n%s", err, out)
	}
	if !strings.Contains(out, "reviewer  x86_64-linux") || !strings.Contains(out, "reviewer  aarch64-linux") || strings.Contains(out, "scratch") {
		t.Errorf("release matrix =\n%s\nwant reviewer on both systems and not scratch (release = false)", out)
	}

	t.Setenv("COSIGN_PASSWORD", "consumer-password")
	if out, err := run(t, "keygen", "--prefix", "cosign"); err != nil {
		t.Fatalf("release keygen = %v\n%s", err, out)
	}
	prefix := reg + "/acme/my-images"
	// One system keeps this short; the template's workflow test releases both.
	args := append([]string{"--agent", "reviewer", "--push", "--registry", prefix, "--insecure", "--key", "cosign.key",
		"--system", "x86_64-linux", "--runtime", "podman", "--output", "release.json"}, inputs...)
	if out, err := run(t, args...); err != nil {
		t.Fatalf("release %s = %v\n%s", strings.Join(args, " "), err, out)
	}

	var rep record.Report
	data, err := os.ReadFile("release.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("release.json: %v\n%s", err, data)
	}
	if len(rep.Agents) != 1 || rep.Agents[0].Agent != "reviewer" || rep.Agents[0].Status != record.StageDone {
		t.Fatalf("release.json agents = %+v, want reviewer done", rep.Agents)
	}
	ar := rep.Agents[0]
	if ar.Repository != prefix+"/reviewer" {
		t.Errorf("pushed to %s, want %s/reviewer (the attribute, not the image name)", ar.Repository, prefix)
	}
	// The smoke test ran in a container and passed...
	if len(ar.Platforms) != 1 || ar.Platforms[0].Smoke == nil {
		t.Fatalf("platforms = %+v, want one with smoke results", ar.Platforms)
	}
	if sm := ar.Platforms[0].Smoke; sm.Mode != string(smoke.ModeContainer) || len(sm.Failed) > 0 || sm.Passed < 40 {
		t.Errorf("smoke = mode %s, %d passed, failed %v; want every check passed in a container", sm.Mode, sm.Passed, sm.Failed)
	}
	// ...holding the image to its own options, as the flake declared them...
	targets, err := flake.Load(t.Context(), flake.Flake{Ref: dir, Overrides: overrides})
	if err != nil {
		t.Fatal(err)
	}
	want := smoke.ExpectOf(targets[0].Image)
	if targets[0].Agent != "reviewer" || want.User != "dev" || want.UID != 1001 || want.Home != "/home/dev" || want.WorkingDir != "/src" ||
		!slices.Equal(want.Entrypoint, []string{smoke.HomeShim, "review"}) || want.Env["REVIEW_MODE"] != "strict" ||
		want.Env["XDG_CONFIG_HOME"] != "/home/dev/.review" || !slices.Contains(want.Dirs, "/opt/review-cache") ||
		!slices.Contains(want.Commands, "hello") || want.NixLd == nil {
		t.Errorf("expectations of %s = %+v, want the flake's user, program, environment, directories, commands and nix-ld", targets[0], want)
	}
	// ...which differ from ours where it matters: our defaults fail it.
	img, err := remote.Image(mustDigest(t, prefix+"/reviewer@"+ar.Platforms[0].Digest.String()))
	if err != nil {
		t.Fatal(err)
	}
	rep2, err := smoke.Test(t.Context(), img, smoke.UserDefaults("pi", "agent", 1000, 1000, "/home/agent", "/workspace"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep2.Failed()) == 0 {
		t.Errorf("the image passes our default expectations too, so the release proves nothing about its own:\n%v", rep2.Results)
	}

	index := mustDigest(t, prefix+"/reviewer@"+ar.Index.String())
	checkRegistryMetadata(t, prefix+"/reviewer", ar.Platforms[0].Digest.String(), targets[0].Image, map[string]string{
		// The repository releasing, from the flake's git origin...
		"org.opencontainers.image.source": "https://github.com/acme/my-images",
		"org.opencontainers.image.url":    "https://github.com/acme/my-images",
		// ...what the flake's labels say, over the source's defaults...
		"org.opencontainers.image.vendor":        "Acme Code Review",
		"org.opencontainers.image.documentation": "https://acme.example/docs/reviewer",
		// ...and the release's own facts.
		"org.opencontainers.image.title":    "reviewer",
		"org.opencontainers.image.revision": rep.Commit,
		"org.opencontainers.image.created":  commitTime(t, dir),
	})

	if out, err := run(t, "verify", "--agent", "reviewer", "--registry", prefix, "--insecure", "--key", "cosign.pub"); err != nil {
		t.Errorf("release verify = %v\n%s", err, out)
	}
	cosignVerify(t, cosign, "cosign.pub", index.String(), prefix+"/reviewer@"+ar.Platforms[0].Digest.String())

	// The trust policy release policy writes for the key admits what the
	// release pushed, as Podman would decide it (containers/image itself:
	// Debian's Podman cannot verify sigstore signatures), and refuses the
	// same bytes under the prefix without the release's signature.
	if out, err := run(t, "policy", "--registry", prefix, "--key", "cosign.pub", "--out", "policy"); err != nil {
		t.Fatalf("release policy = %v\n%s", err, out)
	}
	idx, err := remote.Index(index)
	if err != nil {
		t.Fatal(err)
	}
	copied := mustDigest(t, prefix+"/copied@"+ar.Index.String())
	if err := remote.WriteIndex(copied, idx); err != nil {
		t.Fatalf("copying the index unsigned: %v", err)
	}
	for _, tc := range []struct {
		image string
		want  testenv.Verdict
	}{
		{prefix + "/reviewer:latest", testenv.Accepted},
		{prefix + "/copied@" + ar.Index.String(), testenv.Refused},
	} {
		if got, out := testenv.VerifyPull(t, filepath.Join("policy", "policy.json"), filepath.Join("policy", "registries.d"), tc.image); got != tc.want {
			t.Errorf("pull of %s under release policy's output: %s; want %s", tc.image, out, tc.want)
		} else {
			t.Log(out)
		}
	}
}

// cosignVerify has the real cosign CLI check a key-signed index and the
// signature, both SBOMs (release writes CycloneDX and SPDX by default) and
// the provenance of a platform image.
func cosignVerify(t *testing.T, cosign, pub, index, platform string) {
	t.Helper()
	for _, args := range [][]string{
		{"verify", "--key", pub, "--insecure-ignore-tlog=true", index},
		{"verify", "--key", pub, "--insecure-ignore-tlog=true", platform},
		{"verify-attestation", "--type", "cyclonedx", "--key", pub, "--insecure-ignore-tlog=true", platform},
		{"verify-attestation", "--type", "spdxjson", "--key", pub, "--insecure-ignore-tlog=true", platform},
		{"verify-attestation", "--type", "slsaprovenance1", "--key", pub, "--insecure-ignore-tlog=true", platform},
	} {
		if out, err := testenv.Cosign(t, cosign, args...); err != nil {
			t.Errorf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// checkRegistryMetadata reads what a registry shows of a release the way
// GHCR does, with skopeo rather than this tool: the annotations of the
// index :latest names, and the labels of one platform image's config. The
// index carries the image's description, licence and version and the
// annotations in want; the config exactly the labels the flake declared,
// none of them a per-release fact.
func checkRegistryMetadata(t *testing.T, repo, platform string, flake flake.Image, want map[string]string) {
	t.Helper()
	testenv.Require(t, "skopeo")
	var index struct {
		MediaType   string            `json:"mediaType"`
		Annotations map[string]string `json:"annotations"`
	}
	skopeoJSON(t, &index, "inspect", "--raw", "--tls-verify=false", "docker://"+repo+":latest")
	if index.MediaType != "application/vnd.oci.image.index.v1+json" {
		t.Fatalf("%s:latest is a %s, want an OCI index", repo, index.MediaType)
	}
	want = maps.Clone(want)
	want["org.opencontainers.image.description"] = flake.Description
	want["org.opencontainers.image.licenses"] = flake.License
	want["org.opencontainers.image.version"] = flake.Version
	if flake.Description == "" || flake.License == "" {
		t.Fatalf("the flake's image has description %q and licence %q: the test needs both", flake.Description, flake.License)
	}
	if !maps.Equal(index.Annotations, want) {
		t.Errorf("annotations of %s:latest =\n%v\nwant\n%v", repo, index.Annotations, want)
	}

	var config struct {
		Config struct {
			Labels map[string]string `json:"Labels"`
		} `json:"config"`
	}
	skopeoJSON(t, &config, "inspect", "--config", "--raw", "--tls-verify=false", "docker://"+repo+"@"+platform)
	if len(flake.Labels) == 0 || !maps.Equal(config.Config.Labels, flake.Labels) {
		t.Errorf("config labels of %s@%s =\n%v\nwant the flake's\n%v", repo, platform, config.Config.Labels, flake.Labels)
	}
	for _, k := range []string{"org.opencontainers.image.revision", "org.opencontainers.image.created", "org.opencontainers.image.source"} {
		if v, ok := config.Config.Labels[k]; ok {
			t.Errorf("config label %s = %q: a fact of the release in the image would change its digest with every commit", k, v)
		}
	}
}

// skopeoJSON runs skopeo and decodes what it prints into v.
func skopeoJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out, err := exec.Command("skopeo", args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("skopeo %s printed %s: %v", strings.Join(args, " "), out, err)
	}
}

// commitTime is the time of dir's HEAD commit as the index records it.
func commitTime(t *testing.T, dir string) string {
	t.Helper()
	out, err := exec.Command("git", "-C", dir, "log", "-1", "--format=%ct").Output()
	if err != nil {
		t.Fatal(err)
	}
	secs, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return time.Unix(secs, 0).UTC().Format(time.RFC3339)
}

func mustDigest(t *testing.T, ref string) name.Digest {
	t.Helper()
	d, err := name.NewDigest(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func git(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
