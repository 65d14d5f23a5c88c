package sign

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	sigpayload "github.com/sigstore/sigstore/pkg/signature/payload"
)

// inRepository is rel's images and index as the same manifests in repo.
func inRepository(rel testRelease, repo name.Repository) testRelease {
	out := testRelease{Index: repo.Digest(rel.Index.DigestStr())}
	for _, img := range rel.Images {
		c := *img
		c.Ref, c.Signature = repo.Digest(img.Digest.String()), nil
		out.Images = append(out.Images, &c)
	}
	return out
}

// evidence is what one manifest carries in one repository: the repository
// each simple signature names, and each attestation's DSSE envelope by
// predicate type.
type evidence struct {
	signedFor    []string
	attestations map[string][]byte
}

func evidenceOf(t *testing.T, ctx context.Context, d name.Digest) evidence {
	t.Helper()
	se, err := ociremote.SignedEntity(d, ociremote.WithRemoteOptions(remote.WithContext(ctx)))
	if err != nil {
		t.Fatalf("reading %s: %v", d, err)
	}
	ev := evidence{attestations: map[string][]byte{}}
	sigs, err := se.Signatures()
	if err != nil {
		t.Fatal(err)
	}
	list, err := sigs.Get()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		p, err := s.Payload()
		if err != nil {
			t.Fatal(err)
		}
		var sci sigpayload.SimpleContainerImage
		if err := json.Unmarshal(p, &sci); err != nil {
			t.Fatal(err)
		}
		ev.signedFor = append(ev.signedFor, sci.Critical.Identity.DockerReference)
	}
	atts, err := se.Attestations()
	if err != nil {
		t.Fatal(err)
	}
	list, err = atts.Get()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range list {
		p, err := a.Payload()
		if err != nil {
			t.Fatal(err)
		}
		ev.attestations[predicateTypeOf(a)] = p
	}
	return ev
}

// builderOf reads the builder id out of a SLSA provenance DSSE envelope.
func builderOf(t *testing.T, envelope []byte) string {
	t.Helper()
	var e struct{ Payload string }
	if err := json.Unmarshal(envelope, &e); err != nil {
		t.Fatal(err)
	}
	body, err := base64.StdEncoding.DecodeString(e.Payload)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Predicate struct {
			RunDetails struct {
				Builder struct{ ID string }
			}
		}
	}
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	return st.Predicate.RunDetails.Builder.ID
}

// TestSeveralRegistries signs one release in two registries with one
// Signer: each registry gets a signature naming its own repository (what a
// containers policy's matchRepository checks), and the very attestations
// made for the first, not new ones. A second Signer that only checked a
// part in one registry (a merge) stores that part's attestations in a
// third as they are, keeping the builder the build job named, and the
// release verifies in each.
func TestSeveralRegistries(t *testing.T) {
	ctx := t.Context()
	regA, regB := startRegistry(t), startRegistry(t)
	key, pub := writeKeyPair(t, t.TempDir(), "cosign", "pw")
	t.Setenv("COSIGN_PASSWORD", "pw")
	// The builder is the running workflow, as GitHub Actions names it.
	t.Setenv("GITHUB_SERVER_URL", "https://example.com")
	t.Setenv("GITHUB_WORKFLOW_REF", "build-job")
	builder, err := New(ctx, Config{Key: key, Source: testSource})
	if err != nil {
		t.Fatal(err)
	}
	repoA, _ := name.NewRepository(regA+"/agent-images/pi", name.Insecure)
	repoB, _ := name.NewRepository(regB+"/mirror/pi", name.Insecure)
	repoC, _ := name.NewRepository(regB+"/merged/pi", name.Insecure)
	relA := pushRelease(t, ctx, repoA, "good")
	relB := pushRelease(t, ctx, repoB, "good")
	relC := pushRelease(t, ctx, repoC, "good")
	if relA.Index.DigestStr() != relB.Index.DigestStr() {
		t.Fatalf("the same release has index %s in one registry and %s in the other", relA.Index, relB.Index)
	}
	if _, err := signRelease(ctx, builder, relA); err != nil {
		t.Fatalf("signing in %s: %v", repoA, err)
	}
	signingB, err := signRelease(ctx, builder, relB)
	if err != nil {
		t.Fatalf("signing in %s: %v", repoB, err)
	}
	if !bytes.Contains([]byte(signingB.VerifyCommand), []byte(repoB.String())) {
		t.Errorf("verify command %q does not name %s", signingB.VerifyCommand, repoB)
	}
	for i := range relA.Images {
		a, b := evidenceOf(t, ctx, relA.Images[i].Ref), evidenceOf(t, ctx, relB.Images[i].Ref)
		if len(a.signedFor) != 1 || a.signedFor[0] != repoA.String() || len(b.signedFor) != 1 || b.signedFor[0] != repoB.String() {
			t.Errorf("%s: signatures name %v in %s and %v in %s, want each its own repository", relA.Images[i], a.signedFor, repoA, b.signedFor, repoB)
		}
		if len(a.attestations) != 3 {
			t.Fatalf("%s has attestations %v in %s, want two SBOMs and a provenance", relA.Images[i], len(a.attestations), repoA)
		}
		for typ, env := range a.attestations {
			if !bytes.Equal(b.attestations[typ], env) {
				t.Errorf("%s: the %s attestation in %s is not the one made for %s", relA.Images[i], typ, repoB, repoA)
			}
		}
		// In B they were stored, so the report says they were added there.
		if got := relB.Images[i].Signature.Added; len(got) != 4 {
			t.Errorf("%s in %s: added %v, want its signature and three attestations", relB.Images[i], repoB, got)
		}
	}
	if ev := evidenceOf(t, ctx, relB.Index); len(ev.signedFor) != 1 || ev.signedFor[0] != repoB.String() {
		t.Errorf("index signature in %s names %v, want %s", repoB, ev.signedFor, repoB)
	}

	// A merge: another Signer with the same key checks the parts in A,
	// then stores them with C.
	t.Setenv("GITHUB_WORKFLOW_REF", "merge-job")
	merger, err := New(ctx, Config{Key: key, Source: testSource})
	if err != nil {
		t.Fatal(err)
	}
	for i, img := range relA.Images {
		if err := merger.Check(ctx, img.Ref, Built{}); err != nil {
			t.Fatalf("Check(%s) = %v", img, err)
		}
		c := relC.Images[i]
		if err := signImage(ctx, merger, c); err != nil {
			t.Fatalf("SignImage(%s) = %v", c.Ref, err)
		}
		if err := merger.Check(ctx, c.Ref, Built{}); err != nil {
			t.Errorf("Check(%s) after storing it = %v", c.Ref, err)
		}
		prov := evidenceOf(t, ctx, c.Ref).attestations[PredicateSLSAProvenance]
		if got := builderOf(t, prov); got != "https://example.com/build-job" {
			t.Errorf("%s provenance names builder %q, want the build job's", c.Ref, got)
		}
	}
	if _, err := merger.SignIndex(ctx, relC.Index, relC.refs()); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []testRelease{relA, relB, relC} {
		rep, err := Verify(ctx, rel.Index, Policy{Key: pub, IgnoreTlog: true})
		if err != nil {
			t.Fatal(err)
		}
		if failed := rep.Failed(); len(failed) > 0 {
			t.Errorf("Verify(%s): %v", rel.Index, failed)
		}
	}

	// Signing B again changes nothing there.
	again := inRepository(relB, repoB)
	signing, err := signRelease(ctx, builder, again)
	if err != nil {
		t.Fatal(err)
	}
	if !wroteNothing(again, signing) {
		t.Errorf("signing %s again wrote %+v", repoB, signing)
	}
}
