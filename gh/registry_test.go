package gh

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
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
