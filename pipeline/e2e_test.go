package pipeline

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/publish"
	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/sign"
	"github.com/nothingnesses/agent-images/tags"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

const commit = "0123456789abcdef0123456789abcdef01234567"

var (
	releaseDay = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	// committed is the source time of commit.
	committed = time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)
)

// recorder is a proxy in front of the real registry that remembers every
// request that could change it.
type recorder struct {
	mu     sync.Mutex
	writes []string
}

func (r *recorder) reset() { r.mu.Lock(); r.writes = nil; r.mu.Unlock() }

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.writes...)
}

// startRegistry starts Debian's docker-registry behind a recording proxy
// and returns the proxy's host:port.
func startRegistry(t *testing.T) (string, *recorder) {
	t.Helper()
	upstream, err := url.Parse("http://" + testenv.StartRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	proxy := httputil.NewSingleHostReverseProxy(upstream)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			rec.mu.Lock()
			rec.writes = append(rec.writes, req.Method+" "+req.URL.Path)
			rec.mu.Unlock()
		}
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), rec
}

func requireE2E(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end release: skipped with -short")
	}
	testenv.Require(t, "nix", "podman", "docker-registry")
	testenv.Setenv(t)
}

// unsigned publishes without signing, on purpose.
func unsigned(t *testing.T) sign.Signer {
	s, err := sign.New(t.Context(), sign.Config{Off: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// keySigner signs with a fresh cosign key pair and returns it with the path
// of its public key.
func keySigner(t *testing.T) (sign.Signer, string) {
	t.Helper()
	const password = "pipeline-test"
	kp, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte(password), nil })
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
	if err := os.WriteFile(priv, kp.PrivateBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, kp.PublicBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("COSIGN_PASSWORD", password)
	s, err := sign.New(t.Context(), sign.Config{Key: priv, Source: sign.Source{Repository: "https://github.com/nothingnesses/agent-images", Commit: commit}})
	if err != nil {
		t.Fatal(err)
	}
	return s, pub
}

// options releases from this repository's flake with the stand-in inputs.
func options(t *testing.T, registry string, agents ...string) Options {
	root := testenv.RepoRoot(t)
	o := Options{
		Flake:      flake.Flake{Ref: root, Overrides: testenv.StandinOverrides(t)},
		Agents:     agents,
		Jobs:       4,
		WorkDir:    filepath.Join(t.TempDir(), "work"),
		Push:       registry != "",
		Insecure:   true,
		Runtime:    "podman",
		Source:     "https://github.com/nothingnesses/agent-images",
		Commit:     commit,
		SourceTime: committed,
		Now:        func() time.Time { return releaseDay },
	}
	if registry != "" {
		o.Registries = []string{registry}
		o.Signer = unsigned(t)
	}
	return o
}

func agentReport(t *testing.T, rep *record.Report, agent string) *record.Agent {
	t.Helper()
	for _, a := range rep.Agents {
		if a.Agent == agent {
			return a
		}
	}
	t.Fatalf("report has no agent %s: %+v", agent, rep.Agents)
	return nil
}

// tagsAt maps each tag of repo to its digest.
func tagsAt(t *testing.T, repo name.Repository) map[string]string {
	t.Helper()
	tags, err := remote.List(repo)
	if err != nil {
		return map[string]string{}
	}
	out := map[string]string{}
	for _, tag := range tags {
		desc, err := remote.Head(repo.Tag(tag))
		if err != nil {
			t.Fatalf("%s:%s: %v", repo, tag, err)
		}
		out[tag] = desc.Digest.String()
	}
	return out
}

func TestReleaseEndToEnd(t *testing.T) {
	requireE2E(t)
	ctx := context.Background()
	host, rec := startRegistry(t)
	prefix := host + "/agent-images"
	agents := []string{"codex", "pi"}
	// A dry run builds and plans, and writes nothing to the registry.
	dry := options(t, prefix, agents...)
	dry.DryRun = true
	dry.Signer = nil
	plan, err := Release(ctx, dry)
	if err != nil {
		t.Fatalf("dry-run Release = %v", err)
	}
	for _, a := range plan.Agents {
		if a.Status != record.StagePlanned || a.Index.Hex == "" || len(a.Moved) != 4 {
			t.Errorf("dry run of %s: status %s index %q moves %v, want planned with an index and 4 tags to move", a.Agent, a.Status, a.Index, a.Moved)
		}
	}
	if w := rec.list(); len(w) != 0 {
		t.Fatalf("dry run wrote to the registry: %v", w)
	}

	// The dry run built every image: the release finds each conf.json in
	// the store and realises them all with one nix process.
	released := countNix(t)
	o := options(t, prefix, agents...)
	rep, err := Release(ctx, o)
	if err != nil {
		t.Fatalf("Release = %v", err)
	}
	if got := released(); got["build"] != 1 {
		t.Errorf("release after the dry run ran nix %v, want one build of every conf.json the store holds", got)
	}
	if failed := rep.Failed(); len(failed) > 0 {
		for _, a := range rep.Agents {
			for _, img := range a.Platforms {
				if img.Failed() {
					t.Errorf("%s %s: %s", a.Agent, img.System, img.Error)
				}
			}
			if a.Error != "" {
				t.Errorf("%s: %s", a.Agent, a.Error)
			}
		}
		t.Fatalf("Release failed agents %v", failed)
	}
	for _, agent := range agents {
		a := agentReport(t, rep, agent)
		if a.Status != record.StageDone || a.Unchanged {
			t.Errorf("%s: status %s unchanged %v, want done and changed", agent, a.Status, a.Unchanged)
		}
		if a.Index != agentReport(t, plan, agent).Index {
			t.Errorf("%s: released index %s, the dry run planned %s", agent, a.Index, agentReport(t, plan, agent).Index)
		}
		repo, _ := name.NewRepository(prefix + "/" + agent)
		wantTags := []string{"latest", tags.Safe(a.Version), "2026-11-27", "sha-0123456"}
		for _, tag := range wantTags {
			desc, err := remote.Head(repo.Tag(tag))
			if err != nil {
				t.Errorf("%s:%s: %v", repo, tag, err)
				continue
			}
			if desc.Digest != a.Index {
				t.Errorf("%s:%s = %s, want the index %s", repo, tag, desc.Digest, a.Index)
			}
		}
		idx, err := remote.Index(repo.Digest(a.Index.String()))
		if err != nil {
			t.Fatalf("reading index of %s: %v", agent, err)
		}
		im, _ := idx.IndexManifest()
		want := map[string]string{
			publish.AnnotationRevision: commit,
			publish.AnnotationVersion:  a.Version,
			publish.AnnotationCreated:  "2026-11-26T09:30:00Z",
			publish.AnnotationTitle:    agent,
		}
		for k, v := range want {
			if im.Annotations[k] != v {
				t.Errorf("%s index annotation %s = %q, want %q", agent, k, im.Annotations[k], v)
			}
		}
		platforms := map[string]v1.Descriptor{}
		for _, d := range im.Manifests {
			platforms[d.Platform.String()] = d
			// The manifest must be in the registry by digest.
			if _, err := remote.Image(repo.Digest(d.Digest.String())); err != nil {
				t.Errorf("%s per-arch manifest %s: %v", agent, d.Digest, err)
			}
		}
		for _, p := range a.Platforms {
			// The digest in the registry is the digest of what Nix builds
			// (release packed it from the store), and its index entry names
			// the derivation that builds it.
			img, err := nixBuilt(t, ctx, p.DrvPath)
			if err != nil {
				t.Fatalf("reading built %s: %v", p, err)
			}
			built, _ := img.Digest()
			d := platforms[p.Platform.String()]
			if d.Digest != built || p.Digest != built {
				t.Errorf("%s index entry = %s, record %s, want the built image %s", p, d.Digest, p.Digest, built)
			}
			if d.Annotations[publish.AnnotationDerivation] != p.DrvPath || !strings.HasSuffix(p.DrvPath, ".drv") {
				t.Errorf("%s index entry derivation = %q, want %q", p, d.Annotations[publish.AnnotationDerivation], p.DrvPath)
			}
			if p.Smoke == nil || p.Smoke.Mode != "container" || len(p.Smoke.Failed) != 0 {
				t.Errorf("%s smoke = %+v, want a passing container run", p, p.Smoke)
			}
		}
	}

	// The same release again: one evaluation, nothing built, nothing
	// uploaded, and every agent unchanged by its derivations.
	rec.reset()
	calls := countNix(t)
	again, err := Release(ctx, options(t, prefix, agents...))
	if err != nil {
		t.Fatalf("second Release = %v", err)
	}
	for _, agent := range agents {
		a := agentReport(t, again, agent)
		if a.Status != record.StageUnchanged || !a.Unchanged || !a.SameDerivation || len(a.Moved) != 0 || a.Index != agentReport(t, rep, agent).Index {
			t.Errorf("second release of %s: status %s same derivation %v moved %v index %s; want unchanged, not built, nothing moved, same index", agent, a.Status, a.SameDerivation, a.Moved, a.Index)
		}
	}
	if w := rec.list(); len(w) != 0 {
		t.Errorf("second release wrote to the registry: %v", w)
	}
	if got := calls(); got["build"] != 0 || got["eval"] != 1 {
		t.Errorf("second release ran nix %v, want one eval and no build", got)
	}

	// At a new commit on a new day, the images are the same: no new index,
	// and neither the date nor the sha- tag moves onto the index built at
	// the first commit.
	rec.reset()
	next := options(t, prefix, agents...)
	next.Commit = "89abcdef0123456789abcdef0123456789abcdef"
	next.SourceTime = committed.Add(24 * time.Hour)
	next.Now = func() time.Time { return releaseDay.Add(24 * time.Hour) }
	later, err := Release(ctx, next)
	if err != nil {
		t.Fatalf("Release at a new commit = %v", err)
	}
	for _, agent := range agents {
		a, first := agentReport(t, later, agent), agentReport(t, rep, agent)
		if a.Status != record.StageUnchanged || !a.SameDerivation || a.Index != first.Index || !a.Created.Equal(committed) {
			t.Errorf("release of %s at a new commit: status %s index %s created %s; want unchanged at %s, created %s", agent, a.Status, a.Index, a.Created, first.Index, committed)
		}
	}
	if w := rec.list(); len(w) != 0 {
		t.Errorf("release at a new commit wrote to the registry: %v", w)
	}
	if got := calls(); got["build"] != 0 || got["eval"] != 1 {
		t.Errorf("release at a new commit ran nix %v, want one eval and no build", got)
	}
}

// countNix puts a nix wrapper first on PATH that logs each run's
// subcommand, and returns what ran since the last call, by subcommand.
func countNix(t *testing.T) func() map[string]int {
	t.Helper()
	real, err := exec.LookPath("nix")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	script := fmt.Sprintf("#!/bin/sh\necho \"$1\" >> %s\nexec %s \"$@\"\n", log, real)
	if err := os.WriteFile(filepath.Join(dir, "nix"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return func() map[string]int {
		data, _ := os.ReadFile(log)
		_ = os.Remove(log)
		out := map[string]int{}
		for _, l := range strings.Fields(string(data)) {
			out[l]++
		}
		return out
	}
}

// TestSmokeFailureStopsOnlyThatAgent releases from a flake in which one
// image runs as root: that agent is stopped before anything of it is
// pushed, and the other agent is released.
func TestSmokeFailureStopsOnlyThatAgent(t *testing.T) {
	requireE2E(t)
	ctx := context.Background()
	host, _ := startRegistry(t)
	prefix := host + "/agent-images"
	root := testenv.RepoRoot(t)
	standin := testenv.StandinOverrides(t)
	o := options(t, prefix, "pi", "rooted")
	o.Flake = flake.Flake{
		Ref: "git+file://" + root + "?dir=pipeline/testdata/rootflake",
		Overrides: map[string]string{
			"agent-images":                    "git+file://" + root,
			"agent-images/nixpkgs":            standin["nixpkgs"],
			"agent-images/llm-agents":         standin["llm-agents"],
			"agent-images/llm-agents/nixpkgs": standin["llm-agents/nixpkgs"],
		},
	}
	rep, err := Release(ctx, o)
	if err != nil {
		t.Fatalf("Release = %v", err)
	}
	rooted := agentReport(t, rep, "rooted")
	if rooted.Status != record.StageFailed || !strings.Contains(rooted.Error, "smoke test") || rooted.Index.Hex != "" {
		t.Errorf("rooted = %s %q index %q, want failed by the smoke test, nothing published", rooted.Status, rooted.Error, rooted.Index)
	}
	for _, p := range rooted.Platforms {
		if p.Smoke == nil || len(p.Smoke.Failed) == 0 {
			t.Errorf("rooted %s smoke = %+v, want failing checks", p.System, p.Smoke)
		}
	}
	repo, _ := name.NewRepository(prefix + "/rooted")
	if tags, err := remote.List(repo); err == nil && len(tags) > 0 {
		t.Errorf("rooted has tags %v in the registry, want none", tags)
	}
	if pi := agentReport(t, rep, "pi"); pi.Status != record.StageDone {
		t.Errorf("pi = %s %q, want done", pi.Status, pi.Error)
	}
	if got := rep.Failed(); len(got) != 1 || got[0] != "rooted" {
		t.Errorf("Failed() = %v, want [rooted]", got)
	}
}

func mustTargets(t *testing.T, o Options, agent string, sys flake.System) []flake.Target {
	t.Helper()
	all, err := flake.Load(context.Background(), o.Flake)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := flake.Select(all, []string{agent}, []flake.System{sys})
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// nixBuilt is the image nix build makes of drv, read as release reads an
// archive.
func nixBuilt(t *testing.T, ctx context.Context, drv string) (v1.Image, error) {
	t.Helper()
	version, err := flake.DetectVersion(ctx, flake.Run)
	if err != nil {
		return nil, err
	}
	dir := t.TempDir()
	outs, err := flake.Realise(ctx, flake.Run, version, filepath.Join(dir, "out"), drv)
	if err != nil {
		return nil, err
	}
	out := outs[drv]
	archive, err := flake.Archive(ctx, out, filepath.Join(dir, "image.tar"))
	if err != nil {
		return nil, err
	}
	return flake.ReadImage(ctx, archive)
}

// TestZstdReleaseRunsInPodman releases with --compression zstd and has
// Podman pull the index from the registry and run the agent: the layers are
// zstd on the wire, and a runtime that reads them gets the image release
// built (the same config, so the same image ID).
func TestZstdReleaseRunsInPodman(t *testing.T) {
	requireE2E(t)
	ctx := context.Background()
	host, _ := startRegistry(t)
	prefix := host + "/agent-images"
	o := options(t, prefix, "pi")
	o.Systems = []flake.System{"x86_64-linux"}
	o.Compression = flake.Zstd
	rep, err := Release(ctx, o)
	if err != nil {
		t.Fatalf("Release = %v", err)
	}
	a := agentReport(t, rep, "pi")
	if a.Status != record.StageDone || len(a.Platforms) != 1 {
		t.Fatalf("pi = %s %q with %d images, want done with 1", a.Status, a.Error, len(a.Platforms))
	}
	repo, _ := name.NewRepository(prefix + "/pi")
	img, err := remote.Image(repo.Digest(a.Platforms[0].Digest.String()))
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range m.Layers {
		if l.MediaType != "application/vnd.oci.image.layer.v1.tar+zstd" {
			t.Errorf("layer %s is %s, want zstd", l.Digest, l.MediaType)
		}
	}

	ref := repo.Tag("latest").String()
	storage := t.TempDir()
	podman := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, "podman", append([]string{"--root", filepath.Join(storage, "root"), "--runroot", filepath.Join(storage, "run")}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	podman("pull", "--quiet", "--tls-verify=false", ref)
	id := podman("image", "inspect", "--format", "{{.Id}}", ref)
	if want := m.Config.Digest.Hex; id != want {
		t.Errorf("podman pulled image %s, want %s (the config release built)", id, want)
	}
	if out := podman("run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", ref, "-c", "echo ran"); out != "ran" {
		t.Errorf("running the pulled image said %q, want ran", out)
	}
}
