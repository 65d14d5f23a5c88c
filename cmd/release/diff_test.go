package main

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign"

	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// TestDiffRefusesBadInput: every mistake in a diff command line is named,
// with what to pass instead, before the registry is reached.
func TestDiffRefusesBadInput(t *testing.T) {
	t.Setenv("GITHUB_ACTIONS", "")
	base := []string{"diff", "pi", "--registry", "127.0.0.1:1/agent-images", "--insecure"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no agent", []string{"diff"}, "accepts 1 arg(s)"},
		{"no registry", []string{"diff", "pi"}, "where is pi published? pass --registry"},
		{"registry with a password", []string{"diff", "pi", "--registry", "u:secret@127.0.0.1:1/x"}, "credentials (user:password@)"},
		{"full reference", append(base, "--to", "ghcr.io/x/pi:latest"), "--to ghcr.io/x/pi:latest: give a tag of"},
		{"bad digest", append(base, "--from", "sha256:abc"), "--from sha256:abc is not a digest"},
		{"bad tag", append(base, "--from", "bad!tag"), "--from bad!tag is not a valid tag"},
		{"missing key", append(base, "--key", "/nonexistent/cosign.pub"), "loading the public key /nonexistent/cosign.pub"},
		{"threshold without %", append(base, "--size-threshold", "10"), "give a percentage of the previous size, such as 10%"},
		{"negative threshold", append(base, "--size-threshold", "-3%"), "0% or more"},
		{"two outputs", append(base, "--json", "--markdown"), "--json and --markdown conflict"},
		{"identity pattern", append(base, "--certificate-identity-regexp", ".*"), "release diff pins the exact signer"},
		{"identity without issuer", append(base, "--certificate-identity", "https://github.com/o/r/.github/workflows/r.yml@refs/heads/main"), "pins the issuer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := run(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("release %s = %v, want an error containing %q", strings.Join(tt.args, " "), err, tt.want)
			}
			if strings.Contains(err.Error(), "resolving") || strings.Contains(err.Error(), "secret") {
				t.Errorf("release %s = %v: reached the registry or echoed a password", strings.Join(tt.args, " "), err)
			}
		})
	}
}

// TestDiffBetweenTwoReleases publishes two signed releases of pi on both
// systems into Debian's registry: the stand-in flake, then a copy of its
// llm-agents input where pi has another version and carries an extra
// package of incompressible bytes. release diff must report what the test
// works out on its own from the registry and the two inputs: the version
// change, each platform's size (manifest, config and layers) and delta, the
// exact store paths added and removed (read from the images' layers), the
// llm-agents input's new NAR hash, and growth over --size-threshold.
func TestDiffBetweenTwoReleases(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end release: skipped with -short")
	}
	testenv.Require(t, "nix", "docker-registry")
	testenv.Setenv(t)
	for _, k := range []string{"GITHUB_ACTIONS", "GITHUB_REPOSITORY", "GITHUB_SHA", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"} {
		t.Setenv(k, "")
	}
	reg := testenv.StartRegistry(t)
	dir := t.TempDir()
	const password = "diff-test"
	key, pub := writeKeyPair(t, dir, password)
	env := []string{"COSIGN_PASSWORD=" + password, "DOCKER_CONFIG=" + filepath.Join(dir, "docker")}
	prefix := reg + "/agent-images"

	standin := filepath.Join(testenv.RepoRoot(t), "testdata", "standin", "llm-agents")
	oldVersion := piVersion(t, standin)
	const newVersion = "99.0.0"
	changed := changedLLMAgents(t, standin, filepath.Join(dir, "llm-agents"), oldVersion, newVersion)

	release := func(llmAgents, commit string, extra ...string) {
		t.Helper()
		args := []string{"--agent", "pi", "--push", "--registry", prefix, "--insecure", "--key", key,
			"--runtime", "none", "--commit", commit, "--flake", testenv.RepoRoot(t),
			"--work-dir", filepath.Join(dir, "work"), "--output", filepath.Join(dir, commit[:7]+".json"),
			"--override-input", "llm-agents=path:" + llmAgents}
		for _, input := range []string{"nixpkgs", "llm-agents/nixpkgs"} {
			if ref, ok := testenv.StandinOverrides(t)[input]; ok {
				args = append(args, "--override-input", input+"="+ref)
			}
		}
		if out, err := execRelease(t, env, append(args, extra...)...); err != nil {
			t.Fatalf("release %s: %v\n%s", commit[:7], err, out)
		}
	}
	// The first release also carries an old date, as yesterday's nightly
	// would: both run today, and today's date tag moves to the second.
	release(standin, "1111111111111111111111111111111111111111", "--tag", "2000-01-01")
	release(changed, "2222222222222222222222222222222222222222")

	repo, err := name.NewRepository(prefix+"/pi", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	before, after := published(t, repo.Tag(oldVersion)), published(t, repo.Tag("latest"))
	checkSizesAgainstReport(t, before, filepath.Join(dir, "1111111.json"))
	checkSizesAgainstReport(t, after, filepath.Join(dir, "2222222.json"))

	// Growth over half the smallest growth flags every platform; over twice
	// the largest, none.
	minGrowth, maxGrowth := 1e9, -1e9
	for p, b := range before.sizes {
		g := float64(after.sizes[p]-b) / float64(b)
		minGrowth, maxGrowth = min(minGrowth, g), max(maxGrowth, g)
	}
	if minGrowth <= 0 {
		t.Fatalf("the second release grew by %.4f at least; the test needs every platform to grow", minGrowth)
	}
	low, high := fmt.Sprintf("%.4f%%", minGrowth*50), fmt.Sprintf("%.4f%%", maxGrowth*200)

	out, err := execRelease(t, nil, "diff", "pi", "--registry", prefix, "--insecure", "--key", pub, "--json", "--size-threshold", low)
	if err != nil {
		t.Fatalf("release diff --json: %v\n%s", err, out)
	}
	var rep record.Changes
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("release diff --json printed %q: %v", out, err)
	}
	if rep.Agent != "pi" || !rep.Verified || rep.From.Tag != "2000-01-01" || rep.To.Tag != "latest" ||
		rep.From.Digest != before.index.DigestStr() || rep.To.Digest != after.index.DigestStr() {
		t.Errorf("report compares %+v with %+v (verified %v), want 2000-01-01 = %s with latest = %s, verified",
			rep.From, rep.To, rep.Verified, before.index.DigestStr(), after.index.DigestStr())
	}
	if rep.From.Version != oldVersion || rep.To.Version != newVersion {
		t.Errorf("versions = %s -> %s, want %s -> %s", rep.From.Version, rep.To.Version, oldVersion, newVersion)
	}
	if len(rep.Platforms) != len(after.sizes) || len(after.sizes) == 0 {
		t.Fatalf("report has platforms %+v, the release %v", rep.Platforms, after.sizes)
	}
	for _, p := range rep.Platforms {
		b, a := before.sizes[p.Platform], after.sizes[p.Platform]
		if p.From == nil || p.To == nil || p.From.Size != b || p.To.Size != a || p.SizeDelta != a-b || !p.OverThreshold {
			t.Errorf("%s: sizes %+v -> %+v delta %d over %v; want %d -> %d delta %d, over %s", p.Platform, p.From, p.To, p.SizeDelta, p.OverThreshold, b, a, a-b, low)
		}
		wantAdded, wantRemoved := setDiff(after.paths[p.Platform], before.paths[p.Platform]), setDiff(before.paths[p.Platform], after.paths[p.Platform])
		if got := pathsOf(p.Added); !p.StorePathsCompared || !slices.Equal(got, wantAdded) {
			t.Errorf("%s added = %q, want %q (from the images' layers)", p.Platform, got, wantAdded)
		}
		if got := pathsOf(p.Removed); !slices.Equal(got, wantRemoved) {
			t.Errorf("%s removed = %q, want %q (from the images' layers)", p.Platform, got, wantRemoved)
		}
		// And what the change in the input was meant to do.
		if got, want := namesOf(p.Added), []string{"agent-assets-1.0", "pi-" + newVersion}; !slices.Equal(got, want) {
			t.Errorf("%s added %q, want %q", p.Platform, got, want)
		}
		if got, want := namesOf(p.Removed), []string{"pi-" + oldVersion}; !slices.Equal(got, want) {
			t.Errorf("%s removed %q, want %q", p.Platform, got, want)
		}
	}
	wantInputs := []record.InputChange{{Name: "llm-agents",
		From: record.Pin{NarHash: narHash(t, standin), Override: "path:(local)"},
		To:   record.Pin{NarHash: narHash(t, changed), Override: "path:(local)"}}}
	if !rep.InputsCompared || !slices.Equal(rep.Inputs, wantInputs) {
		t.Errorf("inputs moved = %+v, want %+v", rep.Inputs, wantInputs)
	}

	// The text form, unverified, with the threshold above every growth.
	out, err = execRelease(t, nil, "diff", "pi", "--registry", prefix, "--insecure", "--size-threshold", high)
	if err != nil {
		t.Fatalf("release diff: %v\n%s", err, out)
	}
	for _, want := range []string{
		"pi " + oldVersion + " -> " + newVersion + "\n",
		"  from 2000-01-01  " + before.index.String() + "\n",
		"  to   latest      " + after.index.String() + "\n",
		"attestations read unverified",
		"+ agent-assets  1.0",
		"flake inputs moved:\n  llm-agents  " + wantInputs[0].From.NarHash + " -> " + wantInputs[0].To.NarHash,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("release diff printed\n%s\nwant it to contain %q", out, want)
		}
	}
	if strings.Contains(out, "grew over") {
		t.Errorf("release diff --size-threshold %s flagged growth:\n%s", high, out)
	}

	// Markdown, named by version tag and digest, flagged.
	out, err = execRelease(t, nil, "diff", "pi", "--registry", prefix, "--insecure", "--from", oldVersion,
		"--to", after.index.DigestStr(), "--markdown", "--size-threshold", low)
	if err != nil {
		t.Fatalf("release diff --markdown: %v\n%s", err, out)
	}
	for _, want := range []string{"#### pi " + oldVersion + " → " + newVersion, "> [!WARNING]", "**over "} {
		if !strings.Contains(out, want) {
			t.Errorf("release diff --markdown printed\n%s\nwant it to contain %q", out, want)
		}
	}

	// Attestations by another key are not read as if they were ours.
	otherPub := filepath.Join(dir, "other.pub")
	other, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte("x"), nil })
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, otherPub, string(other.PublicBytes))
	out, err = execRelease(t, nil, "diff", "pi", "--registry", prefix, "--insecure", "--key", otherPub)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(out, "attested, but not by the given key or identity") {
		t.Errorf("release diff --key other.pub = %v\n%s\nwant a failure naming the key", err, out)
	}
}

// piVersion is pi's version in the stand-in llm-agents.
func piVersion(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "agents.nix"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`attr = "pi";\s*version = "([^"]+)";`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s/agents.nix names no version for pi", dir)
	}
	return string(m[1])
}

// changedLLMAgents copies the stand-in llm-agents to dst with pi at
// newVersion, and every agent carrying a package of 256 KiB of random bytes
// (which no compression shrinks), so that the image grows.
func changedLLMAgents(t *testing.T, src, dst, oldVersion, newVersion string) string {
	t.Helper()
	edit := func(file string, pairs ...string) {
		b, err := os.ReadFile(filepath.Join(src, file))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for i := 0; i < len(pairs); i += 2 {
			if !strings.Contains(s, pairs[i]) {
				t.Fatalf("the stand-in %s no longer contains %q: update this test", file, pairs[i])
			}
			s = strings.Replace(s, pairs[i], pairs[i+1], 1)
		}
		writeFile(t, filepath.Join(dst, file), s)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "agents.nix" && e.Name() != "flake.nix" {
			b, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dst, e.Name()), string(b))
		}
	}
	edit("agents.nix", `attr = "pi";
    version = "`+oldVersion+`";`, `attr = "pi";
    version = "`+newVersion+`";`)
	edit("flake.nix",
		"            overlays = [ bunBaselineOverlay ];\n          };\n",
		"            overlays = [ bunBaselineOverlay ];\n          };\n"+
			`          assets = pkgs.runCommand "agent-assets-1.0" { } "mkdir -p $out && head -c 262144 /dev/urandom > $out/blob";`+"\n",
		"                chmod 0555 $out/bin/${a.mainProgram}\n",
		"                chmod 0555 $out/bin/${a.mainProgram}\n                mkdir -p $out/share\n                ln -s ${assets} $out/share/assets\n")
	return dst
}

// publishedRelease is what the test reads of a release on its own: the
// index, and per platform the pull size and the top-level store paths in
// the layers.
type publishedRelease struct {
	index name.Digest
	sizes map[string]int64
	paths map[string][]string
}

// published reads the release tag names.
func published(t *testing.T, tag name.Tag) publishedRelease {
	t.Helper()
	repo := tag.Context()
	desc, err := remote.Get(tag)
	if err != nil {
		t.Fatalf("reading %s: %v", tag, err)
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	rel := publishedRelease{index: repo.Digest(desc.Digest.String()), sizes: map[string]int64{}, paths: map[string][]string{}}
	for _, m := range im.Manifests {
		img, err := remote.Image(repo.Digest(m.Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		manifest, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		size := m.Size + manifest.Config.Size
		for _, l := range manifest.Layers {
			size += l.Size
		}
		rel.sizes[m.Platform.String()] = size
		rel.paths[m.Platform.String()] = layerStorePaths(t, img)
	}
	return rel
}

// checkSizesAgainstReport: the sizes read here are the ones release.json
// recorded when the release was made.
func checkSizesAgainstReport(t *testing.T, rel publishedRelease, report string) {
	t.Helper()
	r, err := record.ReadReport(report)
	if err != nil || len(r.Agents) != 1 {
		t.Fatalf("%s: %v", report, err)
	}
	for _, p := range r.Agents[0].Platforms {
		if rel.sizes[p.Platform.String()] != p.Size {
			t.Errorf("%s: %s size %d, the registry says %d", report, p.Platform, p.Size, rel.sizes[p.Platform.String()])
		}
	}
}

// layerStorePaths lists the /nix/store/<name> entries of img's layers.
func layerStorePaths(t *testing.T, img v1.Image) []string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			rest, ok := strings.CutPrefix(strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/"), "nix/store/")
			if base, _, _ := strings.Cut(rest, "/"); ok && base != "" {
				seen["/nix/store/"+base] = true
			}
		}
		rc.Close()
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// setDiff is a minus b, sorted.
func setDiff(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

func pathsOf(list []record.StorePath) []string {
	out := []string{}
	for _, s := range list {
		out = append(out, s.Path)
	}
	slices.Sort(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

// namesOf are the store paths without their hash, sorted.
func namesOf(list []record.StorePath) []string {
	var out []string
	for _, s := range list {
		_, n, _ := strings.Cut(filepath.Base(s.Path), "-")
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// narHash is what Nix records for a path: flake input, computed by Nix.
func narHash(t *testing.T, dir string) string {
	t.Helper()
	out, err := exec.Command("nix", "hash", "path", dir).Output()
	if err != nil {
		t.Fatalf("nix hash path %s: %v", dir, err)
	}
	return strings.TrimSpace(string(out))
}
