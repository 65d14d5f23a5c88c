package pipeline

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/nothingnesses/agent-images/build"
	"github.com/nothingnesses/agent-images/internal/nix"
	"github.com/nothingnesses/agent-images/internal/testenv"
	"github.com/nothingnesses/agent-images/matrix"
	"github.com/nothingnesses/agent-images/publish"
)

const commit = "0123456789abcdef0123456789abcdef01234567"

var releaseDay = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

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

// options releases from this repository's flake with the stand-in inputs.
func options(t *testing.T, registry string, agents ...string) Options {
	root := testenv.RepoRoot(t)
	return Options{
		Flake:    nix.Flake{Ref: root, Overrides: testenv.StandinOverrides(t)},
		Agents:   agents,
		Jobs:     4,
		WorkDir:  filepath.Join(t.TempDir(), "work"),
		Push:     registry != "",
		Registry: registry,
		Runtime:  "podman",
		Source:   "https://github.com/nothingnesses/agent-images",
		Commit:   commit,
		Now:      func() time.Time { return releaseDay },
	}
}

func agentReport(t *testing.T, rep *Report, agent string) AgentReport {
	t.Helper()
	for _, a := range rep.Agents {
		if a.Agent == agent {
			return a
		}
	}
	t.Fatalf("report has no agent %s: %+v", agent, rep.Agents)
	return AgentReport{}
}

func TestReleaseEndToEnd(t *testing.T) {
	requireE2E(t)
	ctx := context.Background()
	host, rec := startRegistry(t)
	prefix := host + "/agent-images"
	agents := []string{"claude-code", "codex", "pi"}
	// A dry run builds and plans, and writes nothing to the registry.
	dry := options(t, prefix, agents...)
	dry.DryRun = true
	plan, err := Release(ctx, dry)
	if err != nil {
		t.Fatalf("dry-run Release = %v", err)
	}
	for _, a := range plan.Agents {
		if a.Status != StagePlanned || a.Index == "" || len(a.Moved) != 4 {
			t.Errorf("dry run of %s: status %s index %q moves %v, want planned with an index and 4 tags to move", a.Agent, a.Status, a.Index, a.Moved)
		}
	}
	if w := rec.list(); len(w) != 0 {
		t.Fatalf("dry run wrote to the registry: %v", w)
	}

	o := options(t, prefix, agents...)
	rep, err := Release(ctx, o)
	if err != nil {
		t.Fatalf("Release = %v", err)
	}
	if failed := rep.Failed(); len(failed) > 0 {
		t.Fatalf("Release failed agents %v: %+v", failed, rep.Agents)
	}
	for _, agent := range agents {
		a := agentReport(t, rep, agent)
		if a.Status != StageDone || a.Unchanged {
			t.Errorf("%s: status %s unchanged %v, want done and changed", agent, a.Status, a.Unchanged)
		}
		if a.Index != agentReport(t, plan, agent).Index {
			t.Errorf("%s: released index %s, the dry run planned %s", agent, a.Index, agentReport(t, plan, agent).Index)
		}
		repo, _ := name.NewRepository(prefix + "/" + agent)
		wantTags := []string{"latest", publish.SafeTag(a.Version), "2026-11-27", "sha-0123456"}
		for _, tag := range wantTags {
			desc, err := remote.Head(repo.Tag(tag))
			if err != nil {
				t.Errorf("%s:%s: %v", repo, tag, err)
				continue
			}
			if desc.Digest.String() != a.Index {
				t.Errorf("%s:%s = %s, want the index %s", repo, tag, desc.Digest, a.Index)
			}
		}
		idx, err := remote.Index(repo.Digest(a.Index))
		if err != nil {
			t.Fatalf("reading index of %s: %v", agent, err)
		}
		im, _ := idx.IndexManifest()
		if got := im.Annotations[publish.AnnotationRevision]; got != commit {
			t.Errorf("%s index revision = %q, want %q", agent, got, commit)
		}
		if got := im.Annotations[publish.AnnotationVersion]; got != a.Version {
			t.Errorf("%s index version = %q, want %q", agent, got, a.Version)
		}
		if im.Annotations[publish.AnnotationSource] == "" || im.Annotations[publish.AnnotationTitle] != agent {
			t.Errorf("%s index annotations = %v, want source and title", agent, im.Annotations)
		}
		platforms := map[string]v1.Hash{}
		for _, d := range im.Manifests {
			platforms[d.Platform.String()] = d.Digest
			// The manifest must be in the registry by digest.
			if _, err := remote.Image(repo.Digest(d.Digest.String())); err != nil {
				t.Errorf("%s per-arch manifest %s: %v", agent, d.Digest, err)
			}
		}
		for _, sys := range matrix.Systems {
			plat, _ := sys.Platform()
			// The digest in the registry is the digest of what Nix built.
			img, err := build.Image(ctx, filepath.Join(o.WorkDir, "archives", fmt.Sprintf("%s-%s.tar", agent, sys)))
			if err != nil {
				t.Fatalf("reading built %s/%s: %v", agent, sys, err)
			}
			want, _ := img.Digest()
			if platforms[plat.String()] != want {
				t.Errorf("%s index entry for %s = %s, want the built image %s", agent, plat, platforms[plat.String()], want)
			}
		}
		for _, p := range a.Platforms {
			if p.Smoke == nil || p.Smoke.Mode != "container" || len(p.Smoke.Failed) != 0 {
				t.Errorf("%s %s smoke = %+v, want a passing container run", agent, p.System, p.Smoke)
			}
		}
	}

	// The same release again: nothing is uploaded and every agent is unchanged.
	rec.reset()
	o2 := options(t, prefix, agents...)
	again, err := Release(ctx, o2)
	if err != nil {
		t.Fatalf("second Release = %v", err)
	}
	for _, agent := range agents {
		a := agentReport(t, again, agent)
		if a.Status != StageUnchanged || !a.Unchanged || len(a.Moved) != 0 || a.Index != agentReport(t, rep, agent).Index {
			t.Errorf("second release of %s: status %s moved %v index %s; want unchanged, nothing moved, same index", agent, a.Status, a.Moved, a.Index)
		}
	}
	if w := rec.list(); len(w) != 0 {
		t.Errorf("second release wrote to the registry: %v", w)
	}

	// Split mode: one build per system, then merge, gives the same index.
	split := host + "/split"
	for _, sys := range matrix.Systems {
		so := options(t, split, "pi")
		so.Systems = []matrix.System{sys}
		brep, err := BuildStaged(ctx, so)
		if err != nil {
			t.Fatalf("BuildStaged(%s) = %v", sys, err)
		}
		if f := brep.Failed(); len(f) > 0 {
			t.Fatalf("BuildStaged(%s) failed: %+v", sys, brep.Agents)
		}
	}
	mrep, err := Merge(ctx, options(t, split, "pi"))
	if err != nil {
		t.Fatalf("Merge = %v", err)
	}
	merged := agentReport(t, mrep, "pi")
	single := agentReport(t, rep, "pi")
	for i, p := range merged.Platforms {
		if p.DrvPath == "" || p.DrvPath != single.Platforms[i].DrvPath {
			t.Errorf("merged pi %s derivation = %q, want %q as the single run built", p.System, p.DrvPath, single.Platforms[i].DrvPath)
		}
	}
	if merged.Status != StageDone || merged.Index != agentReport(t, rep, "pi").Index {
		t.Errorf("merged pi = %s %s (%s), want done with the single-process index %s", merged.Status, merged.Index, merged.Error, agentReport(t, rep, "pi").Index)
	}
	splitRepo, _ := name.NewRepository(split + "/pi")
	if desc, err := remote.Head(splitRepo.Tag("latest")); err != nil || desc.Digest.String() != merged.Index {
		t.Errorf("%s:latest = %v, %v; want %s", splitRepo, desc, err, merged.Index)
	}
}

func TestMergeRejectsMissingAndStaleParts(t *testing.T) {
	requireE2E(t)
	ctx := context.Background()
	host, _ := startRegistry(t)
	prefix := host + "/agent-images"

	// Only x86_64 staged: merge names the missing arm64 part and moves nothing.
	o := options(t, prefix, "codex")
	o.Systems = []matrix.System{matrix.X86_64Linux}
	o.Runtime = "none"
	if _, err := BuildStaged(ctx, o); err != nil {
		t.Fatal(err)
	}
	rep, err := Merge(ctx, options(t, prefix, "codex"))
	if err != nil {
		t.Fatal(err)
	}
	a := agentReport(t, rep, "codex")
	wantMissing := "linux/arm64 (no " + prefix + "/codex:staging-sha-0123456-linux-arm64)"
	if a.Status != StageFailed || !strings.Contains(a.Error, wantMissing) {
		t.Errorf("Merge with arm64 missing = %s %q, want failed naming %q", a.Status, a.Error, wantMissing)
	}
	repo, _ := name.NewRepository(prefix + "/codex")
	if _, err := remote.Head(repo.Tag("latest")); err == nil {
		t.Errorf("a tag moved although a part was missing")
	}

	// An arm64 part staged for another version of the agent is stale.
	res, err := build.Build(ctx, o.Flake, mustTargets(t, o, "codex", matrix.Aarch64Linux), build.WithWorkDir(t.TempDir()))
	if err != nil || res[0].Err != nil {
		t.Fatalf("building codex/aarch64-linux: %v %v", err, res[0].Err)
	}
	cf, _ := res[0].Image.ConfigFile()
	cf = cf.DeepCopy()
	cf.Config.Labels[publish.AnnotationVersion] = "0.0.1-old"
	old, err := mutate.ConfigFile(res[0].Image, cf)
	if err != nil {
		t.Fatal(err)
	}
	plat, _ := matrix.Aarch64Linux.Platform()
	if _, err := publish.NewRegistry().Stage(ctx, repo, "sha-0123456", publish.Part{Platform: plat, Image: old}); err != nil {
		t.Fatal(err)
	}
	rep, err = Merge(ctx, options(t, prefix, "codex"))
	if err != nil {
		t.Fatal(err)
	}
	a = agentReport(t, rep, "codex")
	if a.Status != StageFailed || !strings.Contains(a.Error, `has version "0.0.1-old", the flake has "0.125.0"`) {
		t.Errorf("Merge with a stale arm64 part = %s %q, want failed naming the stale version", a.Status, a.Error)
	}
	if _, err := remote.Head(repo.Tag("latest")); err == nil {
		t.Errorf("a tag moved although a part was stale")
	}
}

func mustTargets(t *testing.T, o Options, agent string, sys matrix.System) []matrix.Target {
	t.Helper()
	all, err := matrix.Load(context.Background(), o.Flake)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := matrix.Select(all, []string{agent}, []matrix.System{sys})
	if err != nil {
		t.Fatal(err)
	}
	return ts
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
	o.Flake = nix.Flake{
		Ref: "git+file://" + root + "?dir=pipeline/testdata/rootflake",
		Overrides: map[string]string{
			"agent-images":            "git+file://" + root,
			"agent-images/nixpkgs":    standin["nixpkgs"],
			"agent-images/llm-agents": standin["llm-agents"],
		},
	}
	rep, err := Release(ctx, o)
	if err != nil {
		t.Fatalf("Release = %v", err)
	}
	rooted := agentReport(t, rep, "rooted")
	if rooted.Status != StageFailed || !strings.Contains(rooted.Error, "smoke test") || rooted.Index != "" {
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
	if pi := agentReport(t, rep, "pi"); pi.Status != StageDone {
		t.Errorf("pi = %s %q, want done", pi.Status, pi.Error)
	}
	if got := rep.Failed(); len(got) != 1 || got[0] != "rooted" {
		t.Errorf("Failed() = %v, want [rooted]", got)
	}
}
