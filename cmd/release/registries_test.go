package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/testbed/regproxy"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// countedRegistry starts Debian's docker-registry behind a regproxy that
// records every request, and returns the registry's own address, the
// proxy's, and the proxy.
func countedRegistry(t *testing.T) (direct, counted string, p *regproxy.Proxy) {
	t.Helper()
	direct = testenv.StartRegistry(t)
	p = regproxy.To(&url.URL{Scheme: "http", Host: direct})
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return direct, strings.TrimPrefix(srv.URL, "http://"), p
}

// blobUploads counts completed blob uploads by digest, and by repository
// and digest.
func blobUploads(reqs []regproxy.Request) (byDigest, byRepo map[string]int) {
	byDigest, byRepo = map[string]int{}, map[string]int{}
	for _, r := range reqs {
		if r.Method != http.MethodPut || !strings.Contains(r.Path, "/blobs/uploads/") || r.Status != http.StatusCreated {
			continue
		}
		q, _ := url.ParseQuery(r.RawQuery)
		repo, _, _ := strings.Cut(strings.TrimPrefix(r.Path, "/v2/"), "/blobs/")
		byDigest[q.Get("digest")]++
		byRepo[repo+"@"+q.Get("digest")]++
	}
	return byDigest, byRepo
}

// wantEachBlobOnce fails for a blob that crossed the wire into one
// registry twice in one run, or into one repository twice in all the runs
// (a rerun finds what an interrupted run uploaded).
func wantEachBlobOnce(t *testing.T, registry string, runs ...[]regproxy.Request) {
	t.Helper()
	var all []regproxy.Request
	for i, reqs := range runs {
		all = append(all, reqs...)
		byDigest, _ := blobUploads(reqs)
		for d, n := range byDigest {
			if n > 1 {
				t.Errorf("%s, run %d: blob %s was uploaded %d times, want once", registry, i+1, d, n)
			}
		}
	}
	byDigest, byRepo := blobUploads(all)
	if len(byDigest) == 0 {
		t.Errorf("%s: no blob was uploaded", registry)
	}
	for d, n := range byRepo {
		if n > 1 {
			t.Errorf("%s: blob %s was uploaded %d times, want once", registry, d, n)
		}
	}
}

// TestReleaseToSeveralRegistries releases two agents on both systems,
// signed, to two registries at once. The second registry goes down after
// its third blob upload: the first completes and verifies, the second is
// left with no tag at all (nothing points at its partial uploads), and
// release.json, the printed summary and the step summary say that it failed
// there for each agent. Rerun with the second registry back, the first is
// unchanged (nothing written to it) and the second completes: the same index
// in both, every tag complete and verified by skopeo and the cosign CLI, and
// no blob uploaded twice into either registry, across both runs. A third
// run, both registries complete, builds nothing and writes to neither.
func TestReleaseToSeveralRegistries(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry", "skopeo")
	testenv.Setenv(t)
	directA, addrA, countA := countedRegistry(t)
	directB, countedB, countB := countedRegistry(t)
	downB := testenv.StartFaultProxy(t, countedB, 0)
	prefixA, prefixB := addrA+"/agent-images", downB.Addr+"/mirror"

	dir := t.TempDir()
	const password = "several-registries"
	key, pub := writeKeyPair(t, dir, password)
	env := []string{"COSIGN_PASSWORD=" + password, "GITHUB_ACTIONS=", "DOCKER_CONFIG=" + filepath.Join(dir, "docker")}
	checkA := newRegistryChecker(t, directA+"/agent-images", pub)
	checkB := newRegistryChecker(t, directB+"/mirror", pub)
	const commit = "5555555555555555555555555555555555555555"
	release := func(output string) (string, error) {
		args := append([]string{"--agent", strings.Join(faultAgents, ","), "--push",
			"--registry", prefixA, "--registry", prefixB, "--insecure", "--key", key, "--runtime", "none",
			"--commit", commit, "--work-dir", filepath.Join(dir, "work"), "--output", filepath.Join(dir, output)},
			standinArgs(t)...)
		return execRelease(t, env, args...)
	}

	// The second registry goes away after its third blob upload.
	uploads := 0
	downB.Watch(t, func(r testenv.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.Path, "/blobs/uploads/") && r.Status == http.StatusCreated {
			if uploads++; uploads == 3 {
				downB.SetDown(true)
			}
		}
	})
	out, err := release("release-1.json")
	if err == nil {
		t.Fatalf("release with the second registry down succeeded, want it to fail:\n%s", out)
	}
	t.Logf("first run, the second registry down:\n%s", out)
	rep, err := record.ReadReport(filepath.Join(dir, "release-1.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Registries; len(got) != 2 || got[0] != prefixA || got[1] != prefixB {
		t.Errorf("release.json registries = %v, want [%s %s]", got, prefixA, prefixB)
	}
	for _, a := range rep.Agents {
		if a.Status != record.StageFailed || len(a.Published) != 2 {
			t.Fatalf("%s: status %s, published %+v; want failed, with an entry per registry", a.Agent, a.Status, a.Published)
		}
		inA, inB := a.Published[0], a.Published[1]
		if inA.Repository != prefixA+"/"+a.Agent || inA.Status != record.StageDone || inA.Signing == nil {
			t.Errorf("%s in the first registry: %+v, want done and signed", a.Agent, inA)
		}
		if inB.Repository != prefixB+"/"+a.Agent || inB.Status != record.StageFailed || inB.Error == "" || len(inB.Moved) != 0 {
			t.Errorf("%s in the second registry: %+v, want failed with the reason, no tag moved", a.Agent, inB)
		}
		if !strings.Contains(a.Error, prefixB+"/"+a.Agent+": ") || strings.Contains(a.Error, prefixA+"/") {
			t.Errorf("%s error = %q, want it to name the second registry alone", a.Agent, a.Error)
		}
		if a.Index.Hex == "" || a.Repository != inA.Repository || len(a.Moved) == 0 {
			t.Errorf("%s: index %q repository %s moved %v, want the first registry's release", a.Agent, a.Index, a.Repository, a.Moved)
		}
	}
	for _, want := range []string{"done", "failed", prefixB + "/pi: ", prefixA + "/codex"} {
		if !strings.Contains(out, want) {
			t.Errorf("the printed summary lacks %q", want)
		}
	}
	summary, err := run(t, "github", "summary", "--release-json", filepath.Join(dir, "release-1.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, agent := range faultAgents {
		if want := "`" + prefixB + "/" + agent + "`: **failed**"; !strings.Contains(summary, want) {
			t.Errorf("step summary lacks %q:\n%s", want, summary)
		}
	}
	first := checkA.check(t)
	checkA.wantConverged(t, first, commit)
	if got := checkB.check(t); len(got["pi"])+len(got["codex"]) != 0 {
		t.Errorf("the registry that failed has tags %v, want none", got)
	}
	if faults := downB.Faults(); faults[testenv.FaultDown] == 0 {
		t.Fatalf("the second registry was never down (%v): the test tested nothing", faults)
	}

	// The second registry is back: a rerun completes it, and leaves the
	// first alone.
	downB.SetDown(false)
	firstA, firstB := countA.Requests(), countB.Requests()
	writesA := len(countA.Writes())
	out, err = release("release-2.json")
	if err != nil {
		t.Fatalf("rerun with both registries up: %v\n%s", err, out)
	}
	if w := countA.Writes()[writesA:]; len(w) != 0 {
		t.Errorf("the rerun wrote to the registry that had completed: %v", w)
	}
	rep, err = record.ReadReport(filepath.Join(dir, "release-2.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range rep.Agents {
		if a.Status != record.StageDone || len(a.Published) != 2 ||
			a.Published[0].Status != record.StageUnchanged || a.Published[1].Status != record.StageDone {
			t.Errorf("%s on the rerun: %s %+v, want unchanged in the first registry and done in the second", a.Agent, a.Status, a.Published)
		}
	}
	if again := checkA.check(t); !equalTags(first, again) {
		t.Errorf("tags in the first registry after the rerun = %v, want them where they were: %v", again, first)
	}
	mirrored := checkB.check(t)
	checkB.wantConverged(t, mirrored, commit)
	if !equalTags(first, mirrored) {
		t.Errorf("tags in the second registry = %v, want the first's: %v", mirrored, first)
	}
	wantEachBlobOnce(t, prefixA, firstA, countA.Requests()[len(firstA):])
	wantEachBlobOnce(t, prefixB, firstB, countB.Requests()[len(firstB):])
	for _, p := range []*regproxy.Proxy{countA, countB} {
		if s := p.Summary(); s.Mounts == 0 {
			t.Errorf("no layer was mounted within a registry (%+v): the agents share their base layers", s)
		}
	}

	// Each registry has its own signature of the index (naming its own
	// repository), and the same attestations of each image.
	for _, agent := range faultAgents {
		a, _ := name.NewRepository(directA+"/agent-images/"+agent, name.Insecure)
		b, _ := name.NewRepository(directB+"/mirror/"+agent, name.Insecure)
		index := first[agent]["latest"]
		idx, err := remote.Index(a.Digest(index))
		if err != nil {
			t.Fatal(err)
		}
		m, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		image := strings.Replace(m.Manifests[0].Digest.String(), ":", "-", 1)
		for _, tc := range []struct {
			tag  string
			same bool
		}{{strings.Replace(index, ":", "-", 1) + ".sig", false}, {image + ".att", true}} {
			da, errA := remote.Head(a.Tag(tc.tag))
			db, errB := remote.Head(b.Tag(tc.tag))
			if errA != nil || errB != nil {
				t.Errorf("%s: %s in the registries: %v, %v", agent, tc.tag, errA, errB)
				continue
			}
			if (da.Digest == db.Digest) != tc.same {
				t.Errorf("%s: %s is %s in one registry and %s in the other; want the same: %v", agent, tc.tag, da.Digest, db.Digest, tc.same)
			}
		}
	}
	// Both registries complete: a third run builds nothing and writes to
	// neither; every agent is unchanged by its derivations in both.
	writesA, writesB := len(countA.Writes()), len(countB.Writes())
	out, err = release("release-3.json")
	if err != nil {
		t.Fatalf("third run: %v\n%s", err, out)
	}
	if w := append(countA.Writes()[writesA:], countB.Writes()[writesB:]...); len(w) != 0 {
		t.Errorf("the third run wrote: %v", w)
	}
	rep, err = record.ReadReport(filepath.Join(dir, "release-3.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range rep.Agents {
		if a.Status != record.StageUnchanged || !a.SameDerivation || len(a.Published) != 2 ||
			a.Published[0].Status != record.StageUnchanged || a.Published[1].Status != record.StageUnchanged {
			t.Errorf("%s on the third run: %s same derivation %v %+v, want unchanged by its derivations in both registries", a.Agent, a.Status, a.SameDerivation, a.Published)
		}
	}
}
