package sign

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/cosign/v2/pkg/cosign"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// Two store path hashes in Nix's base32 alphabet.
const (
	hashFoo  = "0123456789abcdfghijklmnpqrsvwxyz"
	hashBash = "zyxwvsrqpnmlkjihgfdcba9876543210"
)

// testImage is a small image for one architecture whose layer holds a fake
// /nix/store tree, the way a Nix-built image lays it out. variant changes
// the content, and so the digest.
func testImage(t testing.TB, arch, variant string) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, body string) {
		h := &tar.Header{Name: name, Mode: 0o755, ModTime: time.Unix(1, 0), Typeflag: tar.TypeDir}
		if body != "" {
			h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o555, int64(len(body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if body != "" {
			if _, err := io.WriteString(tw, body); err != nil {
				t.Fatal(err)
			}
		}
	}
	add("nix/", "")
	add("nix/store/", "")
	add("nix/store/"+hashFoo+"-foo-1.0/", "")
	add("nix/store/"+hashFoo+"-foo-1.0/bin/foo", fmt.Sprintf("#!/bin/sh\necho %s %s\n", arch, variant))
	add("nix/store/"+hashBash+"-bash-interactive-5.2p37/", "")
	add("nix/store/"+hashBash+"-bash-interactive-5.2p37/bin/bash", "bash")
	add("etc/passwd", "agent:x:1000:1000::/home/agent:/bin/sh\n")
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", arch
	cfg.Created = v1.Time{Time: time.Unix(1, 0)}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

var testArches = []string{"amd64", "arm64"}

// testAgent is what the flake says of pi, and testSource where it came from.
var (
	testAgent  = flake.Image{Attr: "pi", Name: "Pi", Version: "0.70.6", License: "MIT", Description: "A coding agent"}
	testSource = Source{
		Repository: "https://github.com/nothingnesses/agent-images",
		Commit:     "0123456789abcdef0123456789abcdef01234567",
		FlakeInputs: map[string]FlakeInput{"nixpkgs": {Rev: "89abcdef0123456789abcdef0123456789abcdef"},
			"llm-agents": {NarHash: "sha256-StX9CbIyd4OlIgU4/5bO+GuklGMlSieFKc/8n2VQ+5Q=", Override: "path:(local)"}},
	}
)

// testRelease is what the pipeline hands a Signer for one agent: the pushed
// per-arch images (Ref is where each lies) and their index.
type testRelease struct {
	Index  name.Digest
	Images []*record.Image
}

// testRecord is the record of pi's image for arch.
func testRecord(t testing.TB, arch string, img v1.Image) *record.Image {
	t.Helper()
	sys := map[string]flake.System{"amd64": flake.X86_64Linux, "arm64": flake.Aarch64Linux}[arch]
	p, err := sys.Platform()
	if err != nil {
		t.Fatal(err)
	}
	rec := &record.Image{Agent: "pi", System: string(sys), Platform: p, Image: img}
	rec.DrvPath = "/nix/store/" + hashFoo + "-pi-" + arch + ".drv"
	if rec.Digest, err = img.Digest(); err != nil {
		t.Fatal(err)
	}
	return rec
}

// pushRelease pushes a two-platform release of "pi" into repo by digest,
// its index under :latest, and returns what the pipeline would hand a Signer.
func pushRelease(t testing.TB, ctx context.Context, repo name.Repository, variant string) testRelease {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var rel testRelease
	for _, arch := range testArches {
		img := testImage(t, arch, variant)
		rec := testRecord(t, arch, img)
		rec.Ref = repo.Digest(rec.Digest.String())
		if err := remote.Write(rec.Ref, img, remote.WithContext(ctx)); err != nil {
			t.Fatalf("pushing %s: %v", rec.Ref, err)
		}
		p := rec.Platform
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
		rel.Images = append(rel.Images, rec)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	rel.Index = repo.Digest(d.String())
	if err := remote.WriteIndex(repo.Tag("latest"), idx, remote.WithContext(ctx)); err != nil {
		t.Fatalf("pushing the index: %v", err)
	}
	return rel
}

// signRelease signs rel as the pipeline does: every image, then the index,
// recording what each image's signing returned in its record.
func signRelease(ctx context.Context, s Signer, rel testRelease) (*record.Signing, error) {
	for _, img := range rel.Images {
		if err := signImage(ctx, s, img); err != nil {
			return nil, err
		}
	}
	return s.SignIndex(ctx, rel.Index, rel.refs())
}

// signImage signs img where its Ref says and records what that returned.
func signImage(ctx context.Context, s Signer, img *record.Image) (err error) {
	img.Signature, err = s.SignImage(ctx, img.Ref, img, testAgent)
	return err
}

// refs are where rel's images lie.
func (rel testRelease) refs() []name.Digest {
	out := make([]name.Digest, len(rel.Images))
	for i, img := range rel.Images {
		out[i] = img.Ref
	}
	return out
}

// wroteNothing reports whether signing rel added nothing anywhere.
func wroteNothing(rel testRelease, signing *record.Signing) bool {
	if len(signing.Index.Added) > 0 {
		return false
	}
	for _, img := range rel.Images {
		if img.Signature != nil && len(img.Signature.Added) > 0 {
			return false
		}
	}
	return true
}

// writeKeyPair writes a cosign key pair encrypted with password into dir
// and returns the paths of the private and public keys.
func writeKeyPair(t testing.TB, dir, prefix, password string) (priv, pub string) {
	t.Helper()
	kb, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte(password), nil })
	if err != nil {
		t.Fatal(err)
	}
	priv, pub = filepath.Join(dir, prefix+".key"), filepath.Join(dir, prefix+".pub")
	if err := os.WriteFile(priv, kb.PrivateBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, kb.PublicBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

// registryState maps every tag of repo to the digest it points at.
func registryState(t testing.TB, ctx context.Context, repo name.Repository) map[string]string {
	t.Helper()
	tags, err := remote.List(repo, remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("listing %s: %v", repo, err)
	}
	sort.Strings(tags)
	out := map[string]string{}
	for _, tag := range tags {
		desc, err := remote.Head(repo.Tag(tag), remote.WithContext(ctx))
		if err != nil {
			t.Fatalf("resolving %s:%s: %v", repo, tag, err)
		}
		out[tag] = desc.Digest.String()
	}
	return out
}

// startRegistry starts a registry to sign in. Signing asks Nix for the
// NAR hashes of the image's store paths, so it needs nix too.
func startRegistry(t *testing.T) string {
	t.Helper()
	testenv.Require(t, "nix")
	return testenv.StartRegistry(t)
}
