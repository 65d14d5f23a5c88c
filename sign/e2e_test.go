package sign

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
)

// TestKeySignThenVerify releases with a generated key pair against Debian's
// docker-registry, then checks that Verify passes, and that each way of
// breaking the release fails with its own message.
func TestKeySignThenVerify(t *testing.T) {
	addr := startRegistry(t)
	ctx := t.Context()
	dir := t.TempDir()
	key, pub := writeKeyPair(t, dir, "cosign", "s3cret")
	_, otherPub := writeKeyPair(t, dir, "other", "other")
	t.Setenv("COSIGN_PASSWORD", "s3cret")
	s, err := New(ctx, Config{Key: key, Source: testSource})
	if err != nil {
		t.Fatalf("New(Config{Key}) = %v", err)
	}

	tests := []struct {
		name   string
		key    string
		break_ func(t *testing.T, repo name.Repository, r testRelease)
		// want maps "subject what" to a substring of its failure; checks
		// not named must pass. wantAll applies to every check.
		want    func(repo name.Repository) map[string]string
		wantAll string
	}{
		{name: "signed release verifies", key: pub},
		{name: "wrong key", key: otherPub, wantAll: "not by the given key"},
		{
			name: "missing signature",
			key:  pub,
			break_: func(t *testing.T, repo name.Repository, r testRelease) {
				deleteSignature(t, ctx, r.Images[1].Ref)
			},
			want: func(repo name.Repository) map[string]string {
				return map[string]string{"linux/arm64 signature": "missing signature: nothing at " + repo.String() + ":sha256-"}
			},
		},
		{
			name: "missing blob",
			key:  pub,
			break_: func(t *testing.T, repo name.Repository, r testRelease) {
				img, err := remote.Image(r.Images[0].Ref)
				if err != nil {
					t.Fatal(err)
				}
				layers, _ := img.Layers()
				lost, _ := layers[0].Digest()
				req, _ := http.NewRequest(http.MethodDelete, "http://"+repo.RegistryStr()+"/v2/"+repo.RepositoryStr()+"/blobs/"+lost.String(), nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode != http.StatusAccepted {
					t.Fatalf("deleting blob %s: %v %v", lost, resp, err)
				}
				resp.Body.Close()
			},
			want: func(name.Repository) map[string]string {
				return map[string]string{"linux/amd64 blobs": "the registry lacks blob"}
			},
		},
		{
			name: "tampered tag",
			key:  pub,
			break_: func(t *testing.T, repo name.Repository, r testRelease) {
				// Someone pushes other content, copies the real index's
				// signature next to it and moves the tag.
				other := pushRelease(t, ctx, repo, "evil")
				copySignature(t, ctx, r.Index, other.Index)
			},
			want: func(name.Repository) map[string]string {
				return map[string]string{
					"index signature":                    "tampered: the signature at",
					"linux/amd64 signature":              "missing signature",
					"linux/arm64 signature":              "missing signature",
					"linux/amd64 SBOM attestation":       "missing attestation",
					"linux/arm64 SBOM attestation":       "missing attestation",
					"linux/amd64 provenance attestation": "missing attestation",
					"linux/arm64 provenance attestation": "missing attestation",
				}
			},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo, err := name.NewRepository(addr+"/agent-images/pi"+string(rune('a'+i)), name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			req := pushRelease(t, ctx, repo, "good")
			res, err := signRelease(ctx, s, req)
			if err != nil {
				t.Fatalf("Sign = %v", err)
			}
			if wroteNothing(req, res) {
				t.Errorf("Sign of a new release = unchanged, want signatures added")
			}
			if tt.break_ != nil {
				tt.break_(t, repo, req)
			}
			rep, err := Verify(ctx, repo.Tag("latest"), Policy{Key: tt.key, IgnoreTlog: true})
			if err != nil {
				t.Fatalf("Verify = %v", err)
			}
			if got := len(rep.Checks); got != 9 {
				t.Errorf("Verify made %d checks, want 9 (index + 4 per platform)", got)
			}
			var wants map[string]string
			if tt.want != nil {
				wants = tt.want(repo)
			}
			for _, c := range rep.Checks {
				label := c.Subject + " " + c.What
				want := wants[label]
				if tt.wantAll != "" && c.What != "blobs" {
					want = tt.wantAll
				}
				switch {
				case want == "" && c.Err != nil:
					t.Errorf("%s = %v, want ok", label, c.Err)
				case want != "" && (c.Err == nil || !strings.Contains(c.Err.Error(), want)):
					t.Errorf("%s = %v, want an error containing %q", label, c.Err, want)
				}
			}
			if !strings.Contains(rep.Commands[0], "cosign verify --key "+tt.key+" --insecure-ignore-tlog=true") {
				t.Errorf("Commands[0] = %q, want a cosign verify with the key", rep.Commands[0])
			}
		})
	}
}

// TestSignIsIdempotent signs an unchanged release twice: the second run must
// not add a signature, an attestation or a tag.
func TestSignIsIdempotent(t *testing.T) {
	addr := startRegistry(t)
	ctx := t.Context()
	key, _ := writeKeyPair(t, t.TempDir(), "cosign", "pw")
	t.Setenv("COSIGN_PASSWORD", "pw")
	s, err := New(ctx, Config{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := name.NewRepository(addr+"/agent-images/pi", name.Insecure)
	req := pushRelease(t, ctx, repo, "good")
	first, err := signRelease(ctx, s, req)
	if err != nil {
		t.Fatalf("first Sign = %v", err)
	}
	firstImage := *req.Images[1].Signature
	before := registryState(t, ctx, repo)
	// latest, the index .sig, and per platform a .sig and an .att.
	if got, want := len(before), 1+1+2*len(testArches); got != want {
		t.Errorf("after the first Sign the registry has %d tags %v, want %d", got, before, want)
	}
	if got := req.Images[0].Signature.Added; len(got) != 4 {
		t.Errorf("first Sign added %v to %s, want a signature and three attestations (two SBOMs, provenance)", got, req.Images[0].Ref)
	}

	// A new Signer, as the next nightly run would have.
	s2, err := New(ctx, Config{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	second, err := signRelease(ctx, s2, req)
	if err != nil {
		t.Fatalf("second Sign = %v", err)
	}
	if !wroteNothing(req, second) {
		t.Errorf("second Sign = %+v, want unchanged", second)
	}
	if after := registryState(t, ctx, repo); !maps.Equal(before, after) {
		t.Errorf("registry after the second Sign = %v, want %v", after, before)
	}
	if first.Index.Signature != second.Index.Signature || firstImage.Attestations != req.Images[1].Signature.Attestations {
		t.Errorf("second Sign reports other references: %+v, want %+v", second, first)
	}
}

// TestSBOMFormatAddedLater releases with CycloneDX only, then with both
// formats: the second run adds the SPDX attestation and nothing else, and a
// third run adds nothing. Verify accepts either SBOM.
func TestSBOMFormatAddedLater(t *testing.T) {
	addr := startRegistry(t)
	ctx := t.Context()
	key, pub := writeKeyPair(t, t.TempDir(), "cosign", "pw")
	t.Setenv("COSIGN_PASSWORD", "pw")
	repo, _ := name.NewRepository(addr+"/agent-images/pi", name.Insecure)
	req := pushRelease(t, ctx, repo, "good")

	cdxOnly, err := New(ctx, Config{Key: key, SBOMFormats: []SBOMFormat{SBOMCycloneDX}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signRelease(ctx, cdxOnly, req); err != nil {
		t.Fatalf("Sign(cyclonedx) = %v", err)
	}
	if got, want := req.Images[0].Signature.Predicates, []string{PredicateCycloneDX, PredicateSLSAProvenance}; !slices.Equal(got, want) {
		t.Errorf("Sign(cyclonedx) attested %v, want %v", got, want)
	}
	rep, err := Verify(ctx, req.Index, Policy{Key: pub, IgnoreTlog: true})
	if err != nil {
		t.Fatal(err)
	}
	if failed := rep.Failed(); len(failed) > 0 {
		t.Errorf("Verify of a CycloneDX-only release failed: %v", failed)
	}

	both, err := New(ctx, Config{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	// A merge that attests both formats refuses a part attested in one.
	if err := both.Check(ctx, req.Images[0].Ref, Built{}); err == nil || !strings.Contains(err.Error(), "no "+PredicateSPDX+" attestation") {
		t.Errorf("Check(cyclonedx only) by a signer of both formats = %v, want the SPDX attestation missing", err)
	}
	second, err := signRelease(ctx, both, req)
	if err != nil {
		t.Fatalf("Sign(cyclonedx,spdx) = %v", err)
	}
	for _, p := range req.Images {
		if !slices.Equal(p.Signature.Added, []string{PredicateSPDX}) {
			t.Errorf("second Sign added %v to %s, want only the SPDX attestation", p.Signature.Added, p.Platform)
		}
	}
	if len(second.Index.Added) > 0 {
		t.Errorf("second Sign added %v to the index, want nothing", second.Index.Added)
	}
	third, err := signRelease(ctx, both, req)
	if err != nil {
		t.Fatal(err)
	}
	if !wroteNothing(req, third) {
		t.Errorf("third Sign = %+v, want unchanged", third)
	}
}

// deleteSignature removes the signature image of d from the registry.
func deleteSignature(t *testing.T, ctx context.Context, d name.Digest) {
	t.Helper()
	tag, err := ociremote.SignatureTag(d)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(tag, remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("resolving %s: %v", tag, err)
	}
	if err := remote.Delete(tag.Context().Digest(desc.Digest.String()), remote.WithContext(ctx)); err != nil {
		t.Fatalf("deleting %s: %v", tag, err)
	}
}

// copySignature puts from's signature image at to's signature tag.
func copySignature(t *testing.T, ctx context.Context, from, to name.Digest) {
	t.Helper()
	src, _ := ociremote.SignatureTag(from)
	dst, _ := ociremote.SignatureTag(to)
	img, err := remote.Image(src, remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("reading %s: %v", src, err)
	}
	if err := remote.Write(dst, img, remote.WithContext(ctx)); err != nil {
		t.Fatalf("writing %s: %v", dst, err)
	}
}

// TestKeyCheck is merge's check of a part another job signed with the key:
// it holds with the same key (a new signer, as in the merge job), and fails
// with another key, without a signature, and without the attestations.
func TestKeyCheck(t *testing.T) {
	addr := startRegistry(t)
	ctx := t.Context()
	dir := t.TempDir()
	key, _ := writeKeyPair(t, dir, "cosign", "pw")
	other, _ := writeKeyPair(t, dir, "other", "pw")
	t.Setenv("COSIGN_PASSWORD", "pw")
	newSigner := func(k string) Signer {
		s, err := New(ctx, Config{Key: k})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	repo, _ := name.NewRepository(addr+"/agent-images/pi", name.Insecure)
	built := pushRelease(t, ctx, repo, "built")
	builder := newSigner(key)
	for _, img := range built.Images {
		if err := signImage(ctx, builder, img); err != nil {
			t.Fatalf("SignImage = %v", err)
		}
	}
	merger := newSigner(key)
	for _, img := range built.Images {
		if err := merger.Check(ctx, img.Ref, Built{}); err != nil {
			t.Errorf("Check(%s) with the same key = %v, want ok", img, err)
		}
	}
	if err := newSigner(other).Check(ctx, built.Images[0].Ref, Built{}); err == nil || !strings.Contains(err.Error(), "carries no signature by the signing key") {
		t.Errorf("Check with another key = %v, want refused", err)
	}
	unsigned := pushRelease(t, ctx, repo, "planted")
	if err := merger.Check(ctx, unsigned.Images[1].Ref, Built{}); err == nil || !strings.Contains(err.Error(), "carries no signature") {
		t.Errorf("Check(unsigned) = %v, want refused", err)
	}
	// Signed but not attested: a part whose provenance is gone is refused too.
	sigOnly := pushRelease(t, ctx, repo, "sig-only")
	for _, img := range sigOnly.Images {
		if err := signImage(ctx, builder, img); err != nil {
			t.Fatal(err)
		}
	}
	deleteAttestations(t, ctx, sigOnly.Images[0].Ref)
	if err := merger.Check(ctx, sigOnly.Images[0].Ref, Built{}); err == nil || !strings.Contains(err.Error(), "attestation by the signing key") {
		t.Errorf("Check(no attestations) = %v, want refused for the missing attestation", err)
	}
}

// deleteAttestations removes the attestation image of d from the registry.
func deleteAttestations(t *testing.T, ctx context.Context, d name.Digest) {
	t.Helper()
	tag, err := ociremote.AttestationTag(d)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(tag, remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("resolving %s: %v", tag, err)
	}
	if err := remote.Delete(tag.Context().Digest(desc.Digest.String()), remote.WithContext(ctx)); err != nil {
		t.Fatalf("deleting %s: %v", tag, err)
	}
}
