package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/sign"
)

// buildRecords runs BuildStaged once per system, as the workflow's build
// jobs do, and writes each build record into a new directory.
func buildRecords(t *testing.T, ctx context.Context, o Options) string {
	t.Helper()
	dir := t.TempDir()
	for _, sys := range flake.Systems {
		so := o
		so.Systems = []flake.System{sys}
		b, err := BuildStaged(ctx, so)
		if err != nil {
			t.Fatalf("BuildStaged(%s) = %v", sys, err)
		}
		if f := b.Failed(); len(f) > 0 {
			t.Fatalf("BuildStaged(%s) failed %v: %+v", sys, f, b.Images)
		}
		for _, img := range b.Images {
			// The signature, and each attestation (the SBOMs, the provenance).
			if img.Signature == nil || len(img.Signature.Predicates) < 2 || len(img.Signature.Added) != 1+len(img.Signature.Predicates) {
				t.Errorf("%s was not signed and attested where it was built: %+v", img, img.Signature)
			}
		}
		if err := b.WriteFile(filepath.Join(dir, "build-"+string(sys)+".json")); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// planted is a one-layer image from scratch that claims to be pi for p:
// the right os and architecture, and the version label merge compares.
func planted(t *testing.T, p v1.Platform, version string) v1.Image {
	t.Helper()
	layer, err := random.Layer(512, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = p.OS, p.Architecture
	cf.Config.Labels = map[string]string{"org.opencontainers.image.version": version}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// editRecords copies the build records in dir, changing each image with f,
// into a new directory.
func editRecords(t *testing.T, dir string, f func(b *record.Build, img *record.Image)) string {
	t.Helper()
	builds, err := record.ReadBuilds(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	for i, b := range builds {
		for _, img := range b.Images {
			f(b, img)
		}
		if err := b.WriteFile(filepath.Join(out, "build-"+string(rune('a'+i))+".json")); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestSplitModeBindsPartsByDigestAndSignature is the split release end to
// end: build jobs sign and record their parts, and merge accepts a part only
// by the recorded digest and this release's signature. A planted staging
// image, a forged record and stale records are each refused naming the
// part, with nothing written to the registry; the genuine records merge
// into the index a single-process release gives, and it verifies.
func TestSplitModeBindsPartsByDigestAndSignature(t *testing.T) {
	requireE2E(t)
	ctx := context.Background()
	host, rec := startRegistry(t)
	prefix := host + "/split"
	signer, pub := keySigner(t)
	o := options(t, prefix, "pi")
	o.Runtime = "none"
	o.Signer = signer

	// A dry run builds and tests, and pushes, tags and signs nothing.
	dry := o
	dry.DryRun = true
	if b, err := BuildStaged(ctx, dry); err != nil || len(b.Failed()) > 0 || !b.DryRun {
		t.Fatalf("BuildStaged(dry run) = %+v, %v", b, err)
	}
	if w := rec.list(); len(w) != 0 {
		t.Fatalf("build --dry-run --push wrote to the registry: %v", w)
	}

	records := buildRecords(t, ctx, o)
	repo, _ := name.NewRepository(prefix+"/pi", name.Insecure)
	merge := func(from string) *record.Agent {
		t.Helper()
		mo := o
		mo.From = from
		rep, err := Merge(ctx, mo)
		if err != nil {
			t.Fatalf("Merge(--from %s) = %v", from, err)
		}
		return agentReport(t, rep, "pi")
	}
	refused := func(what, from, want string) {
		t.Helper()
		rec.reset()
		before := tagsAt(t, repo)
		a := merge(from)
		if a.Status != record.StageFailed || !strings.Contains(a.Error, "part pi/x86_64-linux (linux/amd64) refused") || !strings.Contains(a.Error, want) {
			t.Errorf("merge with %s = %s %q, want failed naming the amd64 part and %q", what, a.Status, a.Error, want)
		}
		if w := rec.list(); len(w) != 0 {
			t.Errorf("merge with %s wrote to the registry: %v", what, w)
		}
		if after := tagsAt(t, repo); !equal(before, after) {
			t.Errorf("merge with %s moved tags: %v, were %v", what, after, before)
		}
	}

	// Someone with packages: write replaces the staged amd64 image.
	builds, err := record.ReadBuilds(records)
	if err != nil {
		t.Fatal(err)
	}
	var genuine *record.Image
	for _, b := range builds {
		for _, img := range b.Images {
			if img.System == string(flake.X86_64Linux) {
				genuine = img
			}
		}
	}
	version := mustTargets(t, o, "pi", flake.X86_64Linux)[0].Image.Version
	fake := planted(t, genuine.Platform, version)
	fakeDigest, _ := fake.Digest()
	staging := repo.Tag("staging-sha-0123456-linux-amd64")
	if err := remote.Write(staging, fake); err != nil {
		t.Fatal(err)
	}
	refused("a planted staging image", records, "points at "+fakeDigest.String()+", but the build record says "+genuine.Digest.String())

	// And also forges the record to name the planted digest: no signature.
	forged := editRecords(t, records, func(_ *record.Build, img *record.Image) {
		if img.System == string(flake.X86_64Linux) {
			img.Digest = fakeDigest
		}
	})
	refused("a forged record", forged, "carries no signature by the signing key")

	// Records of another build are stale.
	if err := remote.Tag(staging, mustImage(t, repo.Digest(genuine.Digest.String()))); err != nil {
		t.Fatal(err)
	}
	refused("another derivation", editRecords(t, records, func(_ *record.Build, img *record.Image) {
		if img.System == string(flake.X86_64Linux) {
			img.DrvPath = "/nix/store/00000000000000000000000000000000-pi-old.drv"
		}
	}), "this flake builds")
	refused("another commit", editRecords(t, records, func(b *record.Build, _ *record.Image) {
		b.Commit = "fedcba9876543210fedcba9876543210fedcba98"
	}), `it was built from commit "fedcba9876543210fedcba9876543210fedcba98"`)
	refused("a failed build", editRecords(t, records, func(_ *record.Build, img *record.Image) {
		if img.System == string(flake.X86_64Linux) {
			img.Error = "smoke test failed"
		}
	}), "its build failed: smoke test failed")

	// Without the arm64 record, merge names the missing part.
	only := t.TempDir()
	data, _ := os.ReadFile(filepath.Join(records, "build-x86_64-linux.json"))
	if err := os.WriteFile(filepath.Join(only, "build.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if a := merge(only); a.Status != record.StageFailed || !strings.Contains(a.Error, "part pi/aarch64-linux (linux/arm64) refused: no build record") {
		t.Errorf("merge without the arm64 record = %s %q, want the arm64 part named missing", a.Status, a.Error)
	}

	// The genuine records, with the staging tag back where the build put
	// it, merge; the merge signs the index only.
	a := merge(records)
	if a.Status != record.StageDone || a.Signing == nil || len(a.Signing.Index.Added) != 1 {
		t.Fatalf("merge of the genuine records = %s %q signing %+v, want done with the index signed", a.Status, a.Error, a.Signing)
	}
	for _, p := range a.Platforms {
		if p.DrvPath == "" || p.Smoke == nil || p.Signature == nil {
			t.Errorf("merged %s lacks what its build recorded: %+v", p, p)
		}
	}
	vrep, err := sign.Verify(ctx, repo.Tag("latest"), sign.Policy{Key: pub, IgnoreTlog: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range vrep.Checks {
		if c.Err != nil {
			t.Errorf("verify %s", c)
		}
	}

	// The same release in one process gives the same index.
	so := options(t, host+"/single", "pi")
	so.Runtime = "none"
	so.Signer = signer
	single, err := Release(ctx, so)
	if err != nil {
		t.Fatal(err)
	}
	if s := agentReport(t, single, "pi"); s.Index != a.Index {
		t.Errorf("single-process index %s, split index %s: want the same", s.Index, a.Index)
	}

	// A second merge finds everything, signatures included, and writes nothing.
	rec.reset()
	if again := merge(records); again.Status != record.StageUnchanged || len(again.Moved) != 0 {
		t.Errorf("second merge = %s moved %v, want unchanged", again.Status, again.Moved)
	}
	if w := rec.list(); len(w) != 0 {
		t.Errorf("second merge wrote %v", w)
	}

	// "Re-run failed jobs": the failed attempt's records stay beside the
	// re-run's, and merge takes the newest attempt of each part; two
	// records of one attempt it cannot order, and refuses.
	attempt := func(n int, failed bool) string {
		return editRecords(t, records, func(b *record.Build, img *record.Image) {
			b.Run = &record.Run{ID: "4242", Attempt: n}
			if failed && img.System == string(flake.X86_64Linux) {
				img.Error = "nix build failed"
			}
		})
	}
	together := func(dirs ...string) string {
		out := t.TempDir()
		for i, dir := range dirs {
			files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(out, fmt.Sprintf("%d-%s", i, filepath.Base(f))), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		return out
	}
	if again := merge(together(attempt(1, true), attempt(2, false))); again.Status != record.StageUnchanged {
		t.Errorf("merge of a re-run's records beside the failed attempt's = %s %q, want attempt 2's taken (unchanged)", again.Status, again.Error)
	}
	refused("two records of one attempt", together(attempt(2, false), attempt(2, false)), "none is the newest attempt of one run")
}

func mustImage(t *testing.T, d name.Digest) v1.Image {
	t.Helper()
	img, err := remote.Image(d)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestNoRollbackAndRepair: a release of an older commit leaves latest and
// the date tag at the newer index and says so, moving only its own sha-
// tag; --allow-rollback moves them. A tag whose index lost an image is
// repaired by running the release again.
func TestNoRollbackAndRepair(t *testing.T) {
	requireE2E(t)
	ctx := context.Background()
	host, _ := startRegistry(t)
	prefix := host + "/agent-images"
	repo, _ := name.NewRepository(prefix+"/pi", name.Insecure)
	newer := options(t, prefix, "pi")
	newer.Runtime = "none"
	// Every run here builds: an older commit with the same derivations
	// would otherwise reuse the newer index (TestReleaseEndToEnd),
	// and there would be nothing to roll back.
	newer.Rebuild = true
	nrep, err := Release(ctx, newer)
	if err != nil || len(nrep.Failed()) > 0 {
		t.Fatalf("Release(newer) = %+v, %v", nrep, err)
	}
	n := agentReport(t, nrep, "pi")

	// Re-running an old workflow run: an older commit, the same day.
	older := newer
	older.Commit = "fedcba9876543210fedcba9876543210fedcba98"
	older.SourceTime = committed.Add(-72 * time.Hour)
	orep, err := Release(ctx, older)
	if err != nil {
		t.Fatal(err)
	}
	o := agentReport(t, orep, "pi")
	var kept []string
	for _, k := range o.Kept {
		kept = append(kept, k.Tag)
		if k.Index != n.Index {
			t.Errorf("%s kept at %s, want the newer %s", k.Tag, k.Index, n.Index)
		}
	}
	if o.Status != record.StageDone || strings.Join(o.Moved, " ") != "sha-fedcba9" || !slices.Equal(kept, []string{"latest", n.Tags[1], "2026-11-27"}) {
		t.Errorf("older release: %s moved %v kept %v (%s), want only sha-fedcba9 moved and latest, the version and the date kept", o.Status, o.Moved, kept, o.Error)
	}
	at := tagsAt(t, repo)
	if at["latest"] != n.Index.String() || at["sha-fedcba9"] != o.Index.String() {
		t.Errorf("tags after the older release = %v, want latest at %s and sha-fedcba9 at %s", at, n.Index, o.Index)
	}

	// A deliberate revert.
	older.AllowRollback = true
	rrep, err := Release(ctx, older)
	if err != nil {
		t.Fatal(err)
	}
	if r := agentReport(t, rrep, "pi"); len(r.Kept) != 0 || !slices.Contains(r.Moved, "latest") {
		t.Errorf("--allow-rollback: moved %v kept %v, want latest moved", r.Moved, r.Kept)
	}

	// The registry loses the arm64 image of the index latest points at.
	lost := o.Platforms[1]
	if lost.System != string(flake.Aarch64Linux) {
		t.Fatalf("platform order: %s", lost)
	}
	if err := remote.Delete(repo.Digest(lost.Digest.String())); err != nil {
		t.Fatalf("deleting %s: %v", lost, err)
	}
	fix, err := Release(ctx, older)
	if err != nil {
		t.Fatal(err)
	}
	f := agentReport(t, fix, "pi")
	if f.Unchanged || !slices.Equal(f.Repaired, []string{"linux/arm64"}) || f.Status != record.StageDone {
		t.Errorf("release after a lost image: %s unchanged %v repaired %v, want done with linux/arm64 repaired", f.Status, f.Unchanged, f.Repaired)
	}
	if _, err := remote.Image(repo.Digest(lost.Digest.String())); err != nil {
		t.Errorf("%s is still missing: %v", lost, err)
	}
}

// TestOptionsFailBeforeAnything: every option the caller can get wrong fails
// before the flake is read (the flake here does not exist, so getting as far
// as Nix would give another error), and before anything is pushed.
func TestOptionsFailBeforeAnything(t *testing.T) {
	base := Options{
		Flake:      flake.Flake{Ref: "/nonexistent/flake"},
		Agents:     []string{"pi"},
		Push:       true,
		Registries: []string{"127.0.0.1:5000/x"},
		Runtime:    "none",
		Signer:     unsigned(t),
		Commit:     commit,
	}
	tests := []struct {
		name  string
		edit  func(*Options)
		entry func(context.Context, Options) error
		want  string
	}{
		{"commit with spaces", func(o *Options) { o.Commit = "a b c d e f g" }, nil, `"a b c d e f g" is not a git commit id`},
		{"tag with a space", func(o *Options) { o.ExtraTags = []string{"bad tag"} }, nil, `"bad tag" is not a valid tag`},
		{"tag in cosign's space", func(o *Options) { o.ExtraTags = []string{"sha256-" + strings.Repeat("0", 64) + ".sig"} }, nil, "reserved tag space sha256-*"},
		{"tag in the staging space", func(o *Options) { o.ExtraTags = []string{"staging-x"} }, nil, "reserved tag space staging-*"},
		{"runtime", func(o *Options) { o.Runtime = "bogus" }, nil, `Runtime "bogus": want podman, docker or none`},
		{"registry port", func(o *Options) { o.Registries = []string{"localhost:99999/x"} }, nil, `port "99999" is not a number from 1 to 65535`},
		{"registry credentials", func(o *Options) { o.Registries = []string{"user:SECRET@ghcr.io/x"} }, nil, "holds credentials"},
		{"second registry credentials", func(o *Options) { o.Registries = append(o.Registries, "user:SECRET@ghcr.io/x") }, nil, "holds credentials"},
		{"registry twice", func(o *Options) { o.Registries = append(o.Registries, "127.0.0.1:5000/x/") }, nil, "Registries 127.0.0.1:5000/x: given twice"},
		{"no registry", func(o *Options) { o.Registries = nil }, nil, "Registries: give the repository prefix"},
		{"push without a signer", func(o *Options) { o.Signer = nil }, nil, "pushing needs a signer"},
		{"jobs", func(o *Options) { o.Jobs = -1 }, nil, "Jobs -1"},
		{"staging key", func(o *Options) { o.StagingKey = "a/b" }, func(ctx context.Context, o Options) error { _, err := BuildStaged(ctx, o); return err }, `StagingKey "a/b"`},
		{"merge without records", func(*Options) {}, func(ctx context.Context, o Options) error { _, err := Merge(ctx, o); return err }, "From: give the build records"},
		{"build without a signer", func(o *Options) { o.Signer = nil }, func(ctx context.Context, o Options) error { _, err := BuildStaged(ctx, o); return err }, "pushing needs a signer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.edit(&o)
			entry := tc.entry
			if entry == nil {
				entry = func(ctx context.Context, o Options) error { _, err := Release(ctx, o); return err }
			}
			err := entry(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("= %v, want an error containing %q", err, tc.want)
			}
			if err != nil && (strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "nonexistent")) {
				t.Errorf("= %v: it got past the options (or repeats a secret)", err)
			}
		})
	}
}

// TestAgentNoRegistryHoldsIsNotBuilt: an agent attribute a registry cannot
// hold as a repository name (upper case) fails when planned, before it is
// built; it used to be built and then fail at push.
func TestAgentNoRegistryHoldsIsNotBuilt(t *testing.T) {
	r, err := newRun(Options{Push: true, Registries: []string{"127.0.0.1:5000/x"}, Insecure: true, DryRun: true, Runtime: "none"}, modeRelease)
	if err != nil {
		t.Fatal(err)
	}
	agents, err := r.records([]flake.Target{
		{Agent: "Upper", System: flake.X86_64Linux, Image: flake.Image{Version: "1.0"}},
		{Agent: "pi", System: flake.X86_64Linux, Image: flake.Image{Version: "1.0"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if img := agents[0].Platforms[0]; !img.Failed() || !strings.Contains(img.Error, `agent "Upper" cannot be a repository name`) {
		t.Errorf("Upper = %q, want failed for its name", img.Error)
	}
	if img := agents[1].Platforms[0]; img.Failed() {
		t.Errorf("pi = %q, want planned", img.Error)
	}
}
