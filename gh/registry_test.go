package gh

import (
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// assertIndex checks that each tag of repo points at the index digest, and
// that the index holds an amd64 and an arm64 image that are all there.
func assertIndex(t *testing.T, repo, digest string, tags ...string) {
	t.Helper()
	r, err := name.NewRepository(repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range tags {
		desc, err := remote.Head(r.Tag(tag))
		if err != nil {
			t.Errorf("tag %s:%s: %v", repo, tag, err)
			continue
		}
		if desc.Digest.String() != digest {
			t.Errorf("tag %s:%s = %s, want %s", repo, tag, desc.Digest, digest)
		}
	}
	idx, err := remote.Index(r.Digest(digest))
	if err != nil {
		t.Fatalf("index %s@%s: %v", repo, digest, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	arch := map[string]bool{}
	for _, d := range m.Manifests {
		if d.Platform != nil {
			arch[d.Platform.OS+"/"+d.Platform.Architecture] = true
		}
		if _, err := remote.Head(r.Digest(d.Digest.String())); err != nil {
			t.Errorf("index child %s: %v", d.Digest, err)
		}
	}
	if !arch["linux/amd64"] || !arch["linux/arm64"] {
		t.Errorf("index %s platforms = %v, want linux/amd64 and linux/arm64", digest, arch)
	}
}

// pushOrphan pushes a random image by digest only, as a failed run leaves
// behind, and returns its digest.
func pushOrphan(t *testing.T, repo string) string {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(mustDigest(t, repo+"@"+d.String()), img); err != nil {
		t.Fatalf("pushing the orphan: %v", err)
	}
	return d.String()
}

func mustDigest(t *testing.T, ref string) name.Digest {
	t.Helper()
	d, err := name.NewDigest(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var (
	idMu sync.Mutex
	ids  = map[string]int64{}
)

// versionID gives each digest a stable package version id, as GHCR does.
func versionID(digest string) int64 {
	idMu.Lock()
	defer idMu.Unlock()
	if id, ok := ids[digest]; ok {
		return id
	}
	ids[digest] = int64(1000 + len(ids))
	return ids[digest]
}

// registryVersions lists, the way GHCR's API would, the package versions of
// a live registry repository: every manifest a tag points at, every child of
// a tagged index, and the extra (untagged) digests given, as long as the
// registry still has them. The distribution registry cannot list untagged
// manifests itself, hence extra.
func registryVersions(t *testing.T, prefix string, extra ...string) func(pkg string) []Version {
	return func(pkg string) []Version {
		repo, err := name.NewRepository(prefix[:len(prefix)-len("/acme/agent-images")]+"/acme/"+pkg, name.Insecure)
		if err != nil {
			t.Error(err)
			return nil
		}
		tags, err := remote.List(repo)
		if err != nil {
			t.Errorf("listing tags of %s: %v", repo, err)
			return nil
		}
		byDigest := map[string][]string{}
		for _, tag := range tags {
			desc, err := remote.Get(repo.Tag(tag))
			if err != nil {
				t.Errorf("%s:%s: %v", repo, tag, err)
				continue
			}
			d := desc.Digest.String()
			byDigest[d] = append(byDigest[d], tag)
			if desc.MediaType.IsIndex() {
				idx, _ := desc.ImageIndex()
				m, _ := idx.IndexManifest()
				for _, c := range m.Manifests {
					if _, ok := byDigest[c.Digest.String()]; !ok {
						byDigest[c.Digest.String()] = nil
					}
				}
			}
		}
		for _, d := range extra {
			if _, err := remote.Head(repo.Digest(d)); err == nil {
				if _, ok := byDigest[d]; !ok {
					byDigest[d] = nil
				}
			}
		}
		// Everything here was pushed by the test run that is pruning.
		now := time.Now()
		var out []Version
		for d, tags := range byDigest {
			sort.Strings(tags)
			out = append(out, Version{ID: versionID(d), Digest: d, Tags: tags, Created: now, Updated: now})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
		return out
	}
}
