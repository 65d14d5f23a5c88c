package pipeline

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/publish"
	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/tags"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// cosignVerifies reports whether the real cosign CLI accepts d as signed by
// the key pub: the checker that is not our code.
func cosignVerifies(t *testing.T, pub string, d name.Digest) (bool, string) {
	t.Helper()
	bin := testenv.CosignCLI(t, testenv.CosignVersion)
	out, err := testenv.Cosign(t, bin, "verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-insecure-registry", d.String())
	return err == nil, out
}

// TestNeverSignsAnIndexItDidNotPublish is the signing oracle of issue 18:
// someone with write access to the registry but no key copies the genuine
// index, edits its annotations (keeping the derivations it names) and puts
// it unsigned under latest. The next release used to call it "unchanged:
// same derivation" and sign it with our key. Now it is not reused, never
// signed, named in a note, and latest ends on an index our key verifies.
func TestNeverSignsAnIndexItDidNotPublish(t *testing.T) {
	requireE2E(t)
	ctx := context.Background()
	host, _ := startRegistry(t)
	signer, pub := keySigner(t)
	o := options(t, host+"/oracle", "pi")
	o.Runtime, o.Signer = "none", signer
	if _, err := Release(ctx, o); err != nil {
		t.Fatal(err)
	}
	repo, _ := name.NewRepository(host+"/oracle/pi", name.Insecure)
	genuine, err := remote.Index(repo.Tag("latest"))
	if err != nil {
		t.Fatal(err)
	}
	crafted := mutate.Annotations(genuine, map[string]string{"org.opencontainers.image.description": "crafted"}).(v1.ImageIndex)
	craftedDigest, _ := crafted.Digest()
	if err := remote.WriteIndex(repo.Tag("latest"), crafted); err != nil {
		t.Fatal(err)
	}

	rep, err := Release(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	a := agentReport(t, rep, "pi")
	if a.SameDerivation || a.Failed() {
		t.Errorf("rerun = status %s, same derivation %v; want the crafted index not reused, the release done", a.Status, a.SameDerivation)
	}
	if !strings.Contains(strings.Join(a.Notes, "\n"), craftedDigest.String()) {
		t.Errorf("notes %q, want the crafted index named", a.Notes)
	}
	if ok, _ := cosignVerifies(t, pub, repo.Digest(craftedDigest.String())); ok {
		t.Errorf("cosign verifies the crafted index %s: the release signed it", craftedDigest)
	}
	latest, err := remote.Head(repo.Tag("latest"))
	if err != nil {
		t.Fatal(err)
	}
	if ok, out := cosignVerifies(t, pub, repo.Digest(latest.Digest.String())); !ok || latest.Digest == craftedDigest {
		t.Errorf("latest = %s (crafted %s), cosign verify: %v\n%s", latest.Digest, craftedDigest, ok, out)
	}
}

// TestMergeChecksEachPartsProvenance is the record digest swap of issue 18:
// a build record's digest (and the staging tag) are pointed at another image
// of the same platform and version, signed and attested by the same key but
// built from another derivation. Its signature verifies; its signed
// provenance names the other derivation, and merge refuses it by that.
func TestMergeChecksEachPartsProvenance(t *testing.T) {
	requireE2E(t)
	ctx := context.Background()
	host, _ := startRegistry(t)
	signer, _ := keySigner(t)
	o := options(t, host+"/swap", "pi")
	o.Runtime, o.Signer = "none", signer
	records := buildRecords(t, ctx, o)
	builds, err := record.ReadBuilds(records)
	if err != nil {
		t.Fatal(err)
	}
	var part *record.Image
	var stagingKey string
	for _, b := range builds {
		if b.Images[0].System == string(flake.X86_64Linux) {
			part, stagingKey = b.Images[0], b.StagingKey
		}
	}
	repo, _ := name.NewRepository(host+"/swap/pi", name.Insecure)
	img, err := remote.Image(repo.Digest(part.Digest.String()))
	if err != nil {
		t.Fatal(err)
	}
	// Built from another derivation: one more variable in its environment.
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.Config.Env = append(cf.Config.Env, "EXTRA=1")
	other, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	otherDigest, _ := other.Digest()
	ref := repo.Digest(otherDigest.String())
	if err := remote.Write(ref, other); err != nil {
		t.Fatal(err)
	}
	forged := *part
	forged.Image, forged.Digest, forged.DrvPath = other, otherDigest, "/nix/store/00000000000000000000000000000000-pi-other.drv"
	if _, err := signer.SignImage(ctx, ref, &forged, flake.Image{Attr: "pi", Name: "pi", Version: mustTargets(t, o, "pi", flake.X86_64Linux)[0].Image.Version}); err != nil {
		t.Fatal(err)
	}
	if err := remote.Tag(repo.Tag(tags.StagingTag(stagingKey, part.Platform)), other); err != nil {
		t.Fatal(err)
	}
	swapped := editRecords(t, records, func(_ *record.Build, img *record.Image) {
		if img.System == string(flake.X86_64Linux) {
			img.Digest = otherDigest
		}
	})
	mo := o
	mo.From = swapped
	rep, err := Merge(ctx, mo)
	if err != nil {
		t.Fatal(err)
	}
	a := agentReport(t, rep, "pi")
	if !a.Failed() || !strings.Contains(a.Error, "its signed provenance says it was built from") || len(a.Moved) > 0 {
		t.Errorf("merge of a swapped part = status %s, error %q, moved %v; want refused by its provenance, nothing moved", a.Status, a.Error, a.Moved)
	}
	if _, err := remote.Head(repo.Tag("latest")); err == nil {
		t.Errorf("latest exists after the refused merge")
	}
}

// TestUnsignedIndexNeverPinsATag is the tag freeze of issue 18: an unsigned
// index whose annotations say it was made in 2099 under latest used to keep
// every later release from moving latest ("stays at ..., which is newer"),
// for ever. Only an index this signer signed orders a tag.
func TestUnsignedIndexNeverPinsATag(t *testing.T) {
	requireE2E(t)
	ctx := context.Background()
	host, _ := startRegistry(t)
	signer, pub := keySigner(t)
	o := options(t, host+"/freeze", "pi")
	o.Runtime, o.Signer = "none", signer
	if _, err := Release(ctx, o); err != nil {
		t.Fatal(err)
	}
	repo, _ := name.NewRepository(host+"/freeze/pi", name.Insecure)
	genuine, err := remote.Index(repo.Tag("latest"))
	if err != nil {
		t.Fatal(err)
	}
	future := mutate.Annotations(genuine, map[string]string{publish.AnnotationCreated: "2099-01-01T00:00:00Z", publish.AnnotationVersion: "999"}).(v1.ImageIndex)
	futureDigest, _ := future.Digest()
	for _, tag := range []string{"latest", "0.70.6"} {
		if err := remote.WriteIndex(repo.Tag(tag), future); err != nil {
			t.Fatal(err)
		}
	}

	rep, err := Release(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	a := agentReport(t, rep, "pi")
	if a.Failed() || len(a.Kept) > 0 {
		t.Errorf("release = status %s, kept %+v; want done, no tag kept at the unsigned index", a.Status, a.Kept)
	}
	latest, err := remote.Head(repo.Tag("latest"))
	if err != nil {
		t.Fatal(err)
	}
	if latest.Digest == futureDigest || latest.Digest != a.Index {
		t.Errorf("latest = %s, want this release's %s (the unsigned one was %s)", latest.Digest, a.Index, futureDigest)
	}
	if ok, out := cosignVerifies(t, pub, repo.Digest(latest.Digest.String())); !ok {
		t.Errorf("cosign does not verify latest: %s", out)
	}
}

// TestDeletedBlobIsRestored is issue 18's deleted layer row: with a layer
// blob of a published image gone, the image cannot be pulled, yet the next
// release called the agent unchanged and moved on. Now the image is not
// complete, the agent is built, and its put uploads the blob again.
func TestDeletedBlobIsRestored(t *testing.T) {
	requireE2E(t)
	ctx := context.Background()
	host, _ := startRegistry(t)
	o := options(t, host+"/blob", "pi")
	o.Runtime = "none"
	if _, err := Release(ctx, o); err != nil {
		t.Fatal(err)
	}
	repo, _ := name.NewRepository(host+"/blob/pi", name.Insecure)
	idx, err := remote.Index(repo.Tag("latest"))
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	child := repo.Digest(im.Manifests[0].Digest.String())
	img, err := remote.Image(child)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	lost, _ := layers[len(layers)-1].Digest()
	req, _ := http.NewRequest(http.MethodDelete, "http://"+host+"/v2/blob/pi/blobs/"+lost.String(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("deleting blob %s: %v %v", lost, resp, err)
	}
	resp.Body.Close()

	rep, err := Release(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if a := agentReport(t, rep, "pi"); a.Failed() || a.SameDerivation || len(a.Repaired) == 0 {
		t.Errorf("rerun = status %s, same derivation %v, repaired %v; want the image built and its blob put back", a.Status, a.SameDerivation, a.Repaired)
	}
	l, err := remote.Layer(repo.Digest(lost.String()))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		t.Fatalf("pulling the lost blob %s again: %v", lost, err)
	}
	rc.Close()
}
