package changes

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/nothingnesses/agent-images/record"
	"github.com/sigstore/cosign/v2/pkg/oci"
	cmutate "github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	ctypes "github.com/sigstore/cosign/v2/pkg/types"
)

// These tests run against go-containerregistry's in-process registry, with
// releases built here: what is read, not how it was signed, is the point
// (the end-to-end test of cmd/release diffs real signed releases).

func newRepo(t *testing.T) name.Repository {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	repo, err := name.NewRepository(u.Host + "/agent-images/pi")
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

// pushIndex pushes an index of two random platform images, annotated with
// version, and returns its digest and the images by platform.
func pushIndex(t *testing.T, repo name.Repository, version string, layerSize int64) (name.Digest, map[string]v1.Image) {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	images := map[string]v1.Image{}
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(layerSize, 2)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		if err := remote.Write(repo.Digest(d.String()), img); err != nil {
			t.Fatal(err)
		}
		p := v1.Platform{OS: "linux", Architecture: arch}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
		images[p.String()] = img
	}
	if version != "" {
		idx = mutate.Annotations(idx, map[string]string{versionAnnotation: version}).(v1.ImageIndex)
	}
	d, _ := idx.Digest()
	if err := remote.WriteIndex(repo.Digest(d.String()), idx); err != nil {
		t.Fatal(err)
	}
	return repo.Digest(d.String()), images
}

func tag(t *testing.T, d name.Digest, tags ...string) {
	t.Helper()
	desc, err := remote.Get(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range tags {
		if err := remote.Tag(d.Context().Tag(tg), desc); err != nil {
			t.Fatal(err)
		}
	}
}

// attest attaches an in-toto statement about subject to d, as cosign
// stores one (a DSSE envelope on the .att tag), with a signature nobody
// checks here.
func attest(t *testing.T, d, subject name.Digest, predicateType, predicate string) {
	t.Helper()
	se, err := ociremote.SignedEntity(d)
	if err != nil {
		t.Fatal(err)
	}
	se, err = cmutate.AttachAttestationToEntity(se, envelope(t, subject, predicateType, predicate))
	if err != nil {
		t.Fatal(err)
	}
	if err := ociremote.WriteAttestations(d.Repository, se); err != nil {
		t.Fatal(err)
	}
}

// envelope is an in-toto statement about subject in a DSSE envelope, as
// cosign stores an attestation, with a signature nobody checks here.
func envelope(t *testing.T, subject name.Digest, predicateType, predicate string) oci.Signature {
	t.Helper()
	alg, hex, _ := strings.Cut(subject.DigestStr(), ":")
	body, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v0.1",
		"predicateType": predicateType,
		"subject":       []map[string]any{{"name": subject.Context().Name(), "digest": map[string]string{alg: hex}}},
		"predicate":     json.RawMessage(predicate),
	})
	if err != nil {
		t.Fatal(err)
	}
	env, _ := json.Marshal(map[string]any{
		"payloadType": "application/vnd.in-toto+json",
		"payload":     base64.StdEncoding.EncodeToString(body),
		"signatures":  []map[string]string{{"sig": "bm90IGNoZWNrZWQ="}},
	})
	att, err := static.NewAttestation(env, static.WithLayerMediaType(ctypes.DssePayloadType))
	if err != nil {
		t.Fatal(err)
	}
	return att
}

func cdxDoc(paths ...record.StorePath) string {
	var cs []string
	for _, p := range paths {
		cs = append(cs, `{"type": "library", "name": "`+p.Name+`", "version": "`+p.Version+`", "properties": [{"name": "nix:store-path", "value": "`+p.Path+`"}]}`)
	}
	return `{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [` + strings.Join(cs, ",") + `]}`
}

func provDoc(version, llmRev string) string {
	return `{"buildDefinition": {"externalParameters": {"version": "` + version + `"}, "resolvedDependencies": [
	  {"name": "flake-input:llm-agents", "digest": {"gitCommit": "` + llmRev + `"}}]}}`
}

func platformDigest(t *testing.T, repo name.Repository, img v1.Image) name.Digest {
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return repo.Digest(d.String())
}

func sizeOfImage(t *testing.T, img v1.Image) int64 {
	t.Helper()
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	n := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

// TestCompareReadsTheRegistry pushes two releases with SBOM and provenance
// attestations (and a stray attestation about another image), and checks
// that Compare reads sizes, store paths and inputs from them, unverified.
func TestCompareReadsTheRegistry(t *testing.T) {
	repo := newRepo(t)
	ctx := t.Context()
	oldRev, newRev := strings.Repeat("1", 40), strings.Repeat("2", 40)
	bash, piOld, piNew := sp(h1, "bash", "5.2"), sp(h2, "pi", "0.70.6"), sp(h3, "pi", "0.71.0")

	from, fromImgs := pushIndex(t, repo, "0.70.6", 1000)
	to, toImgs := pushIndex(t, repo, "0.71.0", 3000)
	for _, img := range fromImgs {
		d := platformDigest(t, repo, img)
		attest(t, d, d, predicateCycloneDX, cdxDoc(bash, piOld))
		attest(t, d, d, predicateSLSAProvenance, provDoc("0.70.6", oldRev))
	}
	for _, img := range toImgs {
		d := platformDigest(t, repo, img)
		attest(t, d, d, predicateCycloneDX, cdxDoc(bash, piNew))
		attest(t, d, d, predicateSLSAProvenance, provDoc("0.71.0", newRev))
		// Claims about another image are not this image's evidence.
		attest(t, d, from, predicateCycloneDX, cdxDoc(sp(h4, "evil", "1")))
	}

	rep, err := Compare(ctx, Release{Ref: from, Tag: "0.70.6"}, Release{Ref: to, Tag: "latest"}, Options{SizeThreshold: ptr(0.5)})
	if err != nil {
		t.Fatalf("Compare = %v", err)
	}
	if rep.Verified || rep.From.Version != "0.70.6" || rep.To.Version != "0.71.0" || rep.From.Tag != "0.70.6" || rep.To.Tag != "latest" {
		t.Errorf("report = %+v %+v verified=%v", rep.From, rep.To, rep.Verified)
	}
	if len(rep.Platforms) != 2 {
		t.Fatalf("platforms = %+v, want 2", rep.Platforms)
	}
	for _, p := range rep.Platforms {
		want, wantTo := sizeOfImage(t, fromImgs[p.Platform]), sizeOfImage(t, toImgs[p.Platform])
		if p.From.Size != want || p.To.Size != wantTo || p.SizeDelta != wantTo-want || !p.OverThreshold {
			t.Errorf("%s sizes = %d -> %d (%+d, over %v), want %d -> %d, over 50%%", p.Platform, p.From.Size, p.To.Size, p.SizeDelta, p.OverThreshold, want, wantTo)
		}
		if !reflect.DeepEqual(p.Added, []record.StorePath{piNew}) || !reflect.DeepEqual(p.Removed, []record.StorePath{piOld}) {
			t.Errorf("%s added %v removed %v, want %v and %v", p.Platform, p.Added, p.Removed, piNew, piOld)
		}
	}
	want := []record.InputChange{{Name: "llm-agents", From: record.Pin{Rev: oldRev}, To: record.Pin{Rev: newRev}}}
	if !reflect.DeepEqual(rep.Inputs, want) {
		t.Errorf("inputs = %+v, want %+v", rep.Inputs, want)
	}
}

// TestCompareWithWhatIsInMemory: the side a caller just published is given
// as it has it, and nothing of it is read from the registry: here neither
// its index nor its images were ever pushed. An image whose attestations
// are not given has them read, and only them.
func TestCompareWithWhatIsInMemory(t *testing.T) {
	repo := newRepo(t)
	oldRev, newRev := strings.Repeat("1", 40), strings.Repeat("2", 40)
	bash, piOld, piNew := sp(h1, "bash", "5.2"), sp(h2, "pi", "0.70.6"), sp(h3, "pi", "0.71.0")
	from, fromImgs := pushIndex(t, repo, "0.70.6", 1000)
	for _, img := range fromImgs {
		d := platformDigest(t, repo, img)
		attest(t, d, d, predicateCycloneDX, cdxDoc(bash, piOld))
		attest(t, d, d, predicateSLSAProvenance, provDoc("0.70.6", oldRev))
	}

	amd64, _ := v1.NewHash("sha256:" + strings.Repeat("a", 64))
	armImg := mustRandom(t)
	arm64 := platformDigest(t, repo, armImg)
	if err := remote.Write(arm64, armImg); err != nil {
		t.Fatal(err)
	}
	attest(t, arm64, arm64, predicateCycloneDX, cdxDoc(bash, piNew))
	idx := repo.Digest("sha256:" + strings.Repeat("d", 64))
	amdRef := repo.Digest(amd64.String())
	to := Release{Ref: idx, Version: "0.71.0", Images: []Image{
		{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}, Digest: amd64, Size: 5000, Attestations: []oci.Signature{
			envelope(t, amdRef, predicateCycloneDX, cdxDoc(bash, piNew)),
			envelope(t, amdRef, predicateSLSAProvenance, provDoc("0.71.0", newRev)),
		}},
		{Platform: v1.Platform{OS: "linux", Architecture: "arm64"}, Digest: mustHash(t, arm64), Size: 7000},
	}}
	rep, err := Compare(t.Context(), Release{Ref: from, Tag: "latest"}, to, Options{})
	if err != nil {
		t.Fatalf("Compare = %v", err)
	}
	if rep.To.Version != "0.71.0" || rep.To.Digest != idx.DigestStr() || rep.From.Tag != "latest" || !rep.InputsCompared {
		t.Errorf("report = %+v -> %+v, inputs compared %v", rep.From, rep.To, rep.InputsCompared)
	}
	for _, p := range rep.Platforms {
		wantSize := map[string]int64{"linux/amd64": 5000, "linux/arm64": 7000}[p.Platform]
		if p.To == nil || p.To.Size != wantSize || !p.StorePathsCompared ||
			!reflect.DeepEqual(p.Added, []record.StorePath{piNew}) || !reflect.DeepEqual(p.Removed, []record.StorePath{piOld}) {
			t.Errorf("%s = %+v, want size %d and pi's update, from memory (amd64) and the registry's attestations (arm64)", p.Platform, p, wantSize)
		}
	}
}

func mustRandom(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(100, 1)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func mustHash(t *testing.T, d name.Digest) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestCompareWithoutAttestations compares an unsigned release with a
// single-image one: sizes still compare, the rest is a note.
func TestCompareWithoutAttestations(t *testing.T) {
	repo := newRepo(t)
	from, _ := pushIndex(t, repo, "", 100)
	img, err := random.Image(100, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.ConfigFile()
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.Labels = map[string]string{versionAnnotation: "2.0"}
	img, _ = mutate.ConfigFile(img, cfg)
	to := platformDigest(t, repo, img)
	if err := remote.Write(to, img); err != nil {
		t.Fatal(err)
	}
	rep, err := Compare(t.Context(), Release{Ref: from}, Release{Ref: to}, Options{})
	if err != nil {
		t.Fatalf("Compare = %v", err)
	}
	var got []string
	for _, p := range rep.Platforms {
		got = append(got, p.Platform+" "+p.SizeChange())
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], "linux/amd64 ") || got[1] != "linux/arm64 dropped" {
		t.Errorf("platforms = %q, want amd64 compared and arm64 dropped", got)
	}
	if rep.To.Version != "2.0" || rep.From.Version != "" {
		t.Errorf("versions = %q -> %q, want unknown -> 2.0 (the image label)", rep.From.Version, rep.To.Version)
	}
	if len(rep.Notes) != 2 || rep.InputsCompared || rep.Platforms[0].StorePathsCompared {
		t.Errorf("notes = %q, want the missing SBOM and provenance noted", rep.Notes)
	}

	if _, err := Compare(t.Context(), Release{Ref: from}, Release{Ref: to}, Options{SizeThreshold: ptr(-0.1)}); err == nil || !strings.Contains(err.Error(), "0% or more") {
		t.Errorf("Compare with a negative threshold = %v, want a refusal", err)
	}
}

// TestPrevious walks dated tags: the release before another is the newest
// dated tag past those that point at it.
func TestPrevious(t *testing.T) {
	repo := newRepo(t)
	a, _ := pushIndex(t, repo, "1", 10)
	b, _ := pushIndex(t, repo, "2", 10)
	c, _ := pushIndex(t, repo, "3", 10)
	untagged, _ := pushIndex(t, repo, "4", 10)
	tag(t, a, "2026-05-01", "2026-05-02", "1")
	tag(t, b, "2026-05-03", "2026-13-45") // not a date: ignored
	tag(t, c, "2026-05-04", "2026-05-05", "latest", "zzzz")

	tests := []struct {
		name    string
		to      name.Digest
		want    name.Digest
		wantTag string
		wantErr string
	}{
		{name: "latest", to: c, want: b, wantTag: "2026-05-03"},
		{name: "a release tagged on two days", to: b, want: a, wantTag: "2026-05-02"},
		{name: "the first release", to: a, wantErr: "it is the first dated release"},
		{name: "an untagged digest", to: untagged, wantErr: "no dated tag (YYYY-MM-DD) of " + repo.String() + " points at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, gotTag, err := previous(t.Context(), tt.to, nil)
			if tt.wantErr != "" {
				var none *NoPreviousError
				if !errors.As(err, &none) || !strings.Contains(err.Error(), tt.wantErr) || none.To != tt.to {
					t.Errorf("previous(%s) = %v, want a *NoPreviousError containing %q", tt.name, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want || gotTag != tt.wantTag {
				t.Errorf("previous(%s) = %s %s %v, want %s %s", tt.name, got.DigestStr(), gotTag, err, tt.want.DigestStr(), tt.wantTag)
			}
		})
	}

	got, err := resolve(t.Context(), repo.Tag("latest"), nil)
	if err != nil || got != c {
		t.Errorf("resolve(latest) = %v, %v; want %s", got, err, c)
	}
	if _, err := resolve(t.Context(), repo.Tag("nope"), nil); err == nil || !strings.Contains(err.Error(), "resolving "+repo.Tag("nope").String()) {
		t.Errorf("resolve(nope) = %v, want an error naming the tag", err)
	}

	// Between names both releases by tag, or finds the one before.
	for _, tt := range []struct {
		from          name.Reference
		wantFrom, tag string
	}{
		{from: nil, wantFrom: b.DigestStr(), tag: "2026-05-03"},
		{from: repo.Tag("1"), wantFrom: a.DigestStr(), tag: "1"},
		{from: a, wantFrom: a.DigestStr(), tag: ""},
	} {
		rep, err := Between(t.Context(), tt.from, repo.Tag("latest"), Options{})
		if err != nil || rep.From.Digest != tt.wantFrom || rep.From.Tag != tt.tag || rep.To.Digest != c.DigestStr() || rep.To.Tag != "latest" {
			t.Errorf("Between(%v, latest) = %+v, %v; want from %s (%q) to %s (latest)", tt.from, rep, err, tt.wantFrom, tt.tag, c.DigestStr())
		}
	}
}
