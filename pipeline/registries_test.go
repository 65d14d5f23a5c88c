package pipeline

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign"

	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/sign"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// provenanceBuilders reads, for each per-arch image of the index d, the
// builder its verified SLSA provenance names.
func provenanceBuilders(t *testing.T, ctx context.Context, d name.Digest, v *sign.AttestationVerifier) map[string]string {
	t.Helper()
	idx, err := remote.Index(d)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, desc := range m.Manifests {
		atts, err := v.Attestations(ctx, d.Context().Digest(desc.Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range atts {
			envelope, err := a.Payload()
			if err != nil {
				t.Fatal(err)
			}
			var e struct{ Payload string }
			if err := json.Unmarshal(envelope, &e); err != nil {
				t.Fatal(err)
			}
			body, _ := base64.StdEncoding.DecodeString(e.Payload)
			var st struct {
				PredicateType string
				Predicate     struct {
					RunDetails struct{ Builder struct{ ID string } }
				}
			}
			if err := json.Unmarshal(body, &st); err != nil {
				t.Fatal(err)
			}
			if st.PredicateType == sign.PredicateSLSAProvenance {
				out[desc.Platform.String()] = st.Predicate.RunDetails.Builder.ID
			}
		}
	}
	return out
}

// TestSplitModeToSeveralRegistries is a split release to two registries.
// The build jobs stage in the first only; merge accepts the parts there and
// copies them to the second, where each part gets its own signature and the
// attestations its build job made (the provenance still names the build
// job) and passes the same check before the index is signed and tagged.
// With the second registry down, merge completes the first and fails the
// second with no tag there; merged again once it is back, the second gets
// the same index, which verifies, and the first is left alone.
func TestSplitModeToSeveralRegistries(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end release: skipped with -short")
	}
	testenv.Require(t, "nix", "docker-registry")
	testenv.Setenv(t)
	ctx := context.Background()
	hostA, recA := startRegistry(t)
	directB := testenv.StartRegistry(t)
	proxyB := testenv.StartFaultProxy(t, directB, 0)
	var mu sync.Mutex
	var writesB []string
	proxyB.Watch(t, func(r testenv.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			mu.Lock()
			writesB = append(writesB, r.Method+" "+r.Path)
			mu.Unlock()
		}
	})
	prefixA, prefixB := hostA+"/split", proxyB.Addr+"/mirror"

	const password = "split-registries"
	kp, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte(password), nil })
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key, pub := filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
	if err := os.WriteFile(key, kp.PrivateBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, kp.PublicBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("COSIGN_PASSWORD", password)
	// The builder is the running workflow, as GitHub Actions names it.
	t.Setenv("GITHUB_SERVER_URL", "https://example.com")
	signer := func(workflow string) sign.Signer {
		t.Setenv("GITHUB_WORKFLOW_REF", workflow)
		s, err := sign.New(ctx, sign.Config{Key: key, Source: sign.Source{Repository: "https://github.com/nothingnesses/agent-images", Commit: commit}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	o := options(t, prefixA, "pi")
	o.Registries = []string{prefixA, prefixB}
	o.Runtime = "none"
	o.Signer = signer("build-job")
	records := buildRecords(t, ctx, o)
	builds, err := record.ReadBuilds(records)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range builds {
		if b.Registry != prefixA {
			t.Errorf("build record says staged in %s, want the first registry %s", b.Registry, prefixA)
		}
	}
	if len(writesB) != 0 {
		t.Fatalf("the builds wrote to the second registry: %v", writesB)
	}

	merge := func() *record.Agent {
		t.Helper()
		mo := o
		mo.From = records
		mo.Signer = signer("merge-job")
		rep, err := Merge(ctx, mo)
		if err != nil {
			t.Fatalf("Merge = %v", err)
		}
		if len(rep.Registries) != 2 || rep.Registry != prefixA {
			t.Errorf("report registries %v (%s), want both, the first first", rep.Registries, rep.Registry)
		}
		return agentReport(t, rep, "pi")
	}
	repoA, _ := name.NewRepository(prefixA+"/pi", name.Insecure)
	repoB, _ := name.NewRepository(directB+"/mirror/pi", name.Insecure)

	proxyB.SetDown(true)
	a := merge()
	if a.Status != record.StageFailed || len(a.Published) != 2 || a.Published[0].Status != record.StageDone ||
		a.Published[1].Status != record.StageFailed || !strings.Contains(a.Error, prefixB+"/pi: ") {
		t.Fatalf("merge with the second registry down = %s %q %+v, want done in the first and failed, by name, in the second", a.Status, a.Error, a.Published)
	}
	if tags := tagsAt(t, repoB); len(tags) != 0 {
		t.Errorf("the registry that was down has tags %v, want none", tags)
	}
	index := tagsAt(t, repoA)["latest"]
	if index != a.Index.String() {
		t.Fatalf("latest in the first registry = %s, want the merged index %s", index, a.Index)
	}

	proxyB.SetDown(false)
	recA.reset()
	a = merge()
	if a.Status != record.StageDone || a.Published[0].Status != record.StageUnchanged || a.Published[1].Status != record.StageDone || a.Index.String() != index {
		t.Fatalf("merge again = %s %q index %s %+v, want the first unchanged and the second done with %s", a.Status, a.Error, a.Index, a.Published, index)
	}
	if w := recA.list(); len(w) != 0 {
		t.Errorf("merging again wrote to the first registry: %v", w)
	}
	tagsB := tagsAt(t, repoB)
	for _, tag := range []string{"latest", "sha-0123456"} {
		if tagsB[tag] != index {
			t.Errorf("%s:%s = %q, want %s as in the first registry", repoB, tag, tagsB[tag], index)
		}
	}
	for tag := range tagsB {
		if strings.HasPrefix(tag, "staging-") {
			t.Errorf("%s has the staging tag %s: parts are copied by digest, staged in the first registry only", repoB, tag)
		}
	}
	policy := sign.Policy{Key: pub, IgnoreTlog: true}
	for _, repo := range []name.Repository{repoA, repoB} {
		rep, err := sign.Verify(ctx, repo.Digest(index), policy)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range rep.Failed() {
			t.Errorf("verify in %s: %s", repo, c)
		}
	}
	v, err := sign.NewAttestationVerifier(ctx, policy)
	if err != nil {
		t.Fatal(err)
	}
	for platform, builder := range provenanceBuilders(t, ctx, repoB.Digest(index), v) {
		if builder != "https://example.com/build-job" {
			t.Errorf("%s %s: provenance names builder %q, want the build job that made it", repoB, platform, builder)
		}
	}

	// Everything is everywhere now: a third merge writes nothing.
	recA.reset()
	mu.Lock()
	writesB = nil
	mu.Unlock()
	if a = merge(); a.Status != record.StageUnchanged {
		t.Errorf("third merge = %s %+v, want unchanged", a.Status, a.Published)
	}
	if w := recA.list(); len(w) != 0 || len(writesB) != 0 {
		t.Errorf("third merge wrote %v and %v", w, writesB)
	}
}
