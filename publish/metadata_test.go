package publish

import (
	"maps"
	"strings"
	"testing"
	"unicode/utf8"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/nothingnesses/agent-images/record"
)

// withLabels returns the release's images with these config labels, one
// map per image.
func withLabels(t *testing.T, labels ...map[string]string) []*record.Image {
	t.Helper()
	imgs := images(t)
	for i, img := range imgs {
		cf, err := img.Image.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.Config.Labels = labels[i]
		if img.Image, err = mutate.ConfigFile(img.Image, cf); err != nil {
			t.Fatal(err)
		}
	}
	return imgs
}

func TestIndexAnnotations(t *testing.T) {
	nix := map[string]string{
		AnnotationTitle:       "agent-images/pi",
		AnnotationDescription: "A coding agent",
		AnnotationVersion:     "0.70.6",
		AnnotationLicenses:    "MIT",
	}
	custom := maps.Clone(nix)
	custom[AnnotationVendor] = "Acme Inc"
	custom[AnnotationDocumentation] = "https://docs.acme.example/pi"
	custom[AnnotationSource] = "https://github.com/upstream/images"
	const fork = "https://github.com/acme/agent-images"
	long := strings.Repeat("ä", MaxDescription+10)
	tests := []struct {
		name   string
		labels [2]map[string]string
		rel    Release
		want   map[string]string
	}{
		{
			name:   "what the images say, the release's facts, and the defaults of its source",
			labels: [2]map[string]string{nix, nix},
			rel: Release{Version: "0.70.6", Created: day1, Annotations: map[string]string{
				AnnotationTitle: "pi", AnnotationSource: fork, AnnotationRevision: "0123456789abcdef0123456789abcdef01234567"}},
			want: map[string]string{
				AnnotationTitle: "pi", AnnotationDescription: "A coding agent", AnnotationLicenses: "MIT",
				AnnotationSource: fork, AnnotationURL: fork, AnnotationDocumentation: fork + "#readme", AnnotationVendor: "acme",
				AnnotationRevision: "0123456789abcdef0123456789abcdef01234567",
				AnnotationVersion:  "0.70.6", AnnotationCreated: "2026-11-01T12:00:00Z",
			},
		},
		{
			// The flake's labels win over the source's defaults, but the
			// repository releasing names the source.
			name:   "labels a flake set",
			labels: [2]map[string]string{custom, custom},
			rel:    Release{Version: "0.70.6", Annotations: map[string]string{AnnotationSource: fork}},
			want: map[string]string{
				AnnotationTitle: "agent-images/pi", AnnotationDescription: "A coding agent", AnnotationLicenses: "MIT",
				AnnotationSource: fork, AnnotationURL: fork, AnnotationDocumentation: "https://docs.acme.example/pi", AnnotationVendor: "Acme Inc",
				AnnotationVersion: "0.70.6",
			},
		},
		{
			name:   "a source only the flake knows",
			labels: [2]map[string]string{custom, custom},
			rel:    Release{},
			want: map[string]string{
				AnnotationTitle: "agent-images/pi", AnnotationDescription: "A coding agent", AnnotationLicenses: "MIT",
				AnnotationSource: "https://github.com/upstream/images", AnnotationURL: "https://github.com/upstream/images",
				AnnotationDocumentation: "https://docs.acme.example/pi", AnnotationVendor: "Acme Inc",
			},
		},
		{
			// Per-platform labels the images disagree on say nothing of the
			// index; labels that are not descriptive never reach it.
			name: "images that disagree",
			labels: [2]map[string]string{
				{AnnotationDescription: "amd64 build", AnnotationLicenses: "MIT", "com.example.arch": "amd64"},
				{AnnotationDescription: "arm64 build", AnnotationLicenses: "MIT", "com.example.arch": "arm64"},
			},
			want: map[string]string{AnnotationLicenses: "MIT"},
		},
		{
			name:   "no source, no defaults",
			labels: [2]map[string]string{nil, nil},
			rel:    Release{Version: "1"},
			want:   map[string]string{AnnotationVersion: "1"},
		},
		{
			name:   "a description longer than GHCR shows",
			labels: [2]map[string]string{{AnnotationDescription: long}, {AnnotationDescription: long}},
			want:   map[string]string{AnnotationDescription: strings.Repeat("ä", MaxDescription-1) + "…"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rel := tt.rel
			rel.Images = withLabels(t, tt.labels[0], tt.labels[1])
			idx, err := Index(rel)
			if err != nil {
				t.Fatal(err)
			}
			m, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(m.Annotations, tt.want) {
				t.Errorf("index annotations =\n%v\nwant\n%v", m.Annotations, tt.want)
			}
			if n := utf8.RuneCountInString(m.Annotations[AnnotationDescription]); n > MaxDescription {
				t.Errorf("description has %d characters, GHCR shows %d", n, MaxDescription)
			}
		})
	}
}

// The index is what changes from one commit to the next; the images (and
// so their digests) stay as the flake built them.
func TestIndexAnnotationsLeaveImagesAlone(t *testing.T) {
	imgs := withLabels(t, map[string]string{AnnotationLicenses: "MIT"}, map[string]string{AnnotationLicenses: "MIT"})
	before := make([]v1.Hash, len(imgs))
	for i, img := range imgs {
		before[i], _ = img.Image.Digest()
	}
	for _, commit := range []string{"1111111", "2222222"} {
		idx, err := Index(Release{Images: imgs, Annotations: map[string]string{AnnotationRevision: commit}})
		if err != nil {
			t.Fatal(err)
		}
		m, _ := idx.IndexManifest()
		for i, d := range m.Manifests {
			if d.Digest != before[i] || d.Annotations[AnnotationRevision] != "" {
				t.Errorf("revision %s: entry %d is %s with %v, want the image as built, %s, unannotated", commit, i, d.Digest, d.Annotations, before[i])
			}
		}
	}
}

func TestValidateSource(t *testing.T) {
	tests := []struct {
		source, want string
	}{
		{"https://github.com/acme/agent-images", ""},
		{"https://gitlab.example.com/group/sub/project", ""},
		{"http://github.com/acme/agent-images", "not an https address"},
		{"github.com/acme/agent-images", "not an https address"},
		{"https://x-access-token:s3cret@github.com/acme/r", "holds credentials"},
		{"https://github.com/acme/r?token=1", "query or fragment"},
		{"https://github.com/acme/r#readme", "query or fragment"},
		{"%zz", "not a URL"},
	}
	for _, tt := range tests {
		err := ValidateSource(tt.source)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("ValidateSource(%q) = %v, want nil", tt.source, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("ValidateSource(%q) = %v, want an error saying %q", tt.source, err, tt.want)
		case err != nil && strings.Contains(err.Error(), "s3cret"):
			t.Errorf("ValidateSource(%q) = %v: repeats the credentials", tt.source, err)
		}
	}
}

func TestSourceDefaults(t *testing.T) {
	tests := []struct {
		source string
		want   map[string]string
	}{
		{"https://github.com/acme/agent-images", map[string]string{
			AnnotationURL: "https://github.com/acme/agent-images", AnnotationDocumentation: "https://github.com/acme/agent-images#readme", AnnotationVendor: "acme"}},
		{"https://git.example.com", map[string]string{AnnotationURL: "https://git.example.com", AnnotationDocumentation: "https://git.example.com#readme"}},
		{"", nil},
		{"git@github.com:acme/r.git", nil},
	}
	for _, tt := range tests {
		if got := SourceDefaults(tt.source); !maps.Equal(got, tt.want) {
			t.Errorf("SourceDefaults(%q) = %v, want %v", tt.source, got, tt.want)
		}
	}
}
