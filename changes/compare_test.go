package changes

import (
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/nothingnesses/agent-images/record"
)

// Store path hashes in Nix's base32 alphabet.
const (
	h1 = "0123456789abcdfghijklmnpqrsvwxyz"
	h2 = "zyxwvsrqpnmlkjihgfdcba9876543210"
	h3 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	h4 = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func sp(hash, name, version string) record.StorePath {
	return record.StorePath{Path: "/nix/store/" + hash + "-" + name + "-" + version, Name: name, Version: version}
}

func digest(t *testing.T, repo, hexChar string) name.Digest {
	t.Helper()
	d, err := name.NewDigest(repo + "@sha256:" + strings.Repeat(hexChar, 64))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// testRelease is a release of pi as read would find it: amd64 and arm64
// with SBOMs and provenances, sizes in bytes.
func testRelease(t *testing.T, idx, version string, amd64, arm64 int64, paths []record.StorePath, inputs map[string]record.Pin) *Release {
	t.Helper()
	const repo = "ghcr.io/o/agent-images/pi"
	rel := &Release{Ref: digest(t, repo, idx), Version: version}
	for i, p := range []struct {
		arch string
		size int64
	}{{"amd64", amd64}, {"arm64", arm64}} {
		h, err := v1.NewHash(digest(t, repo, string(rune(idx[0]+byte(i+1)))).DigestStr())
		if err != nil {
			t.Fatal(err)
		}
		rel.Images = append(rel.Images, Image{
			Platform: v1.Platform{OS: "linux", Architecture: p.arch},
			Digest:   h,
			Size:     p.size,
			sbom:     &sbom{paths: paths, agentVersion: version},
			prov:     &provenance{version: version, inputs: inputs},
		})
	}
	return rel
}

func ptr(f float64) *float64 { return &f }

func TestCompare(t *testing.T) {
	oldInputs := map[string]record.Pin{
		"nixpkgs":    {Rev: strings.Repeat("1", 40), NarHash: "sha256-nixpkgsA="},
		"llm-agents": {Rev: strings.Repeat("2", 40), NarHash: "sha256-llmA="},
	}
	newInputs := map[string]record.Pin{
		"nixpkgs":    {Rev: strings.Repeat("1", 40), NarHash: "sha256-nixpkgsA="},
		"llm-agents": {Rev: strings.Repeat("3", 40), NarHash: "sha256-llmB="},
	}
	bash := sp(h1, "bash-interactive", "5.2p37")
	piOld, piNew := sp(h2, "pi", "0.70.6"), sp(h3, "pi", "0.71.0")
	assets := sp(h4, "agent-assets", "1.0")

	tests := []struct {
		name      string
		before    func(t *testing.T) *Release
		after     func(t *testing.T) *Release
		threshold *float64
		check     func(t *testing.T, r *record.Changes)
	}{
		{
			name: "version, sizes, store paths and inputs",
			before: func(t *testing.T) *Release {
				return testRelease(t, "a", "0.70.6", 1000, 2000, []record.StorePath{bash, piOld}, oldInputs)
			},
			after: func(t *testing.T) *Release {
				return testRelease(t, "d", "0.71.0", 1250, 1900, []record.StorePath{assets, bash, piNew}, newInputs)
			},
			threshold: ptr(0.10),
			check: func(t *testing.T, r *record.Changes) {
				if r.Agent != "pi" || r.From.Version != "0.70.6" || r.To.Version != "0.71.0" || !r.VersionChanged() {
					t.Errorf("agent and versions = %s %s -> %s, want pi 0.70.6 -> 0.71.0", r.Agent, r.From.Version, r.To.Version)
				}
				if len(r.Platforms) != 2 {
					t.Fatalf("platforms = %+v, want amd64 and arm64", r.Platforms)
				}
				amd, arm := r.Platforms[0], r.Platforms[1]
				if amd.SizeDelta != 250 || amd.SizeGrowth != 0.25 || !amd.OverThreshold {
					t.Errorf("amd64 = %+d (%g), over=%v; want +250 (0.25), over 10%%", amd.SizeDelta, amd.SizeGrowth, amd.OverThreshold)
				}
				if arm.SizeDelta != -100 || arm.SizeGrowth != -0.05 || arm.OverThreshold {
					t.Errorf("arm64 = %+d (%g), over=%v; want -100 (-0.05), not over", arm.SizeDelta, arm.SizeGrowth, arm.OverThreshold)
				}
				for _, p := range r.Platforms {
					if want := []record.StorePath{assets, piNew}; !reflect.DeepEqual(p.Added, want) {
						t.Errorf("%s added = %v, want %v", p.Platform, p.Added, want)
					}
					if want := []record.StorePath{piOld}; !reflect.DeepEqual(p.Removed, want) {
						t.Errorf("%s removed = %v, want %v", p.Platform, p.Removed, want)
					}
				}
				want := []record.InputChange{{Name: "llm-agents", From: oldInputs["llm-agents"], To: newInputs["llm-agents"]}}
				if !r.InputsCompared || !reflect.DeepEqual(r.Inputs, want) {
					t.Errorf("inputs = %+v (compared %v), want %+v", r.Inputs, r.InputsCompared, want)
				}
				if len(r.Notes) != 0 {
					t.Errorf("notes = %q, want none", r.Notes)
				}
				if got := r.OverThreshold(); len(got) != 1 || got[0].Platform != "linux/amd64" {
					t.Errorf("OverThreshold() = %+v, want linux/amd64", got)
				}
			},
		},
		{
			name:      "growth equal to the threshold is not over it",
			before:    func(t *testing.T) *Release { return testRelease(t, "a", "1", 1000, 1000, nil, oldInputs) },
			after:     func(t *testing.T) *Release { return testRelease(t, "d", "1", 1100, 1101, nil, oldInputs) },
			threshold: ptr(0.10),
			check: func(t *testing.T, r *record.Changes) {
				if r.Platforms[0].OverThreshold || !r.Platforms[1].OverThreshold {
					t.Errorf("over = %v, %v; want 10%% exactly not over, 10.1%% over", r.Platforms[0].OverThreshold, r.Platforms[1].OverThreshold)
				}
				if r.VersionChanged() || len(r.Inputs) != 0 {
					t.Errorf("version changed %v, inputs %+v; want neither", r.VersionChanged(), r.Inputs)
				}
			},
		},
		{
			name:   "no threshold flags nothing",
			before: func(t *testing.T) *Release { return testRelease(t, "a", "1", 1000, 1000, nil, nil) },
			after:  func(t *testing.T) *Release { return testRelease(t, "d", "1", 9000, 9000, nil, nil) },
			check: func(t *testing.T, r *record.Changes) {
				if r.SizeThreshold != nil || len(r.OverThreshold()) != 0 {
					t.Errorf("threshold %v flagged %+v, want nothing", r.SizeThreshold, r.OverThreshold())
				}
			},
		},
		{
			name:   "a platform added and one dropped",
			before: func(t *testing.T) *Release { return testRelease(t, "a", "1", 1000, 1000, nil, nil) },
			after: func(t *testing.T) *Release {
				r := testRelease(t, "d", "1", 1000, 1000, nil, nil)
				r.Images[1].Platform.Architecture = "riscv64"
				return r
			},
			threshold: ptr(0),
			check: func(t *testing.T, r *record.Changes) {
				var got []string
				for _, p := range r.Platforms {
					got = append(got, p.Platform+" "+p.SizeChange())
				}
				want := []string{"linux/amd64 same size", "linux/arm64 dropped", "linux/riscv64 new"}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("platforms = %q, want %q", got, want)
				}
				for _, p := range r.Platforms {
					if p.OverThreshold || p.StorePathsCompared != (p.Platform == "linux/amd64") {
						t.Errorf("%s: over %v, paths compared %v", p.Platform, p.OverThreshold, p.StorePathsCompared)
					}
				}
			},
		},
		{
			name:   "an earlier release without attestations",
			before: func(t *testing.T) *Release { return stripped(testRelease(t, "a", "", 1000, 1000, nil, nil)) },
			after: func(t *testing.T) *Release {
				return testRelease(t, "d", "0.71.0", 1000, 1000, []record.StorePath{piNew}, newInputs)
			},
			check: func(t *testing.T, r *record.Changes) {
				if r.From.Version != "" || r.To.Version != "0.71.0" {
					t.Errorf("versions = %q -> %q, want unknown -> 0.71.0", r.From.Version, r.To.Version)
				}
				for _, p := range r.Platforms {
					if p.StorePathsCompared || p.Added != nil || p.Removed != nil {
						t.Errorf("%s store paths compared without an SBOM: %+v", p.Platform, p)
					}
				}
				if r.InputsCompared || r.Inputs != nil {
					t.Errorf("inputs compared without a provenance: %+v", r.Inputs)
				}
				want := []string{
					"linux/amd64: sha256:aaaaaaaaaaaa has no SBOM attestation, so its store paths are not compared",
					"linux/arm64: sha256:aaaaaaaaaaaa has no SBOM attestation, so its store paths are not compared",
					"sha256:aaaaaaaaaaaa has no provenance attestation, so flake inputs are not compared",
				}
				if !reflect.DeepEqual(r.Notes, want) {
					t.Errorf("notes = %q, want %q", r.Notes, want)
				}
			},
		},
		{
			name: "version from the provenance when the index has none",
			before: func(t *testing.T) *Release {
				r := testRelease(t, "a", "0.70.6", 1, 1, nil, nil)
				r.Version = ""
				return r
			},
			after: func(t *testing.T) *Release { return testRelease(t, "d", "0.70.6", 1, 1, nil, nil) },
			check: func(t *testing.T, r *record.Changes) {
				if r.From.Version != "0.70.6" || r.VersionChanged() {
					t.Errorf("from version = %q, want 0.70.6 from the provenance", r.From.Version)
				}
			},
		},
		{
			name: "an input added and one removed",
			before: func(t *testing.T) *Release {
				return testRelease(t, "a", "1", 1, 1, nil, map[string]record.Pin{"old": {Rev: "r1"}, "same": {NarHash: "sha256-x="}})
			},
			after: func(t *testing.T) *Release {
				return testRelease(t, "d", "1", 1, 1, nil, map[string]record.Pin{"new": {Override: "path:(local)"}, "same": {NarHash: "sha256-x="}})
			},
			check: func(t *testing.T, r *record.Changes) {
				want := []record.InputChange{{Name: "new", To: record.Pin{Override: "path:(local)"}}, {Name: "old", From: record.Pin{Rev: "r1"}}}
				if !reflect.DeepEqual(r.Inputs, want) {
					t.Errorf("inputs = %+v, want %+v", r.Inputs, want)
				}
			},
		},
		{
			name: "the same release",
			before: func(t *testing.T) *Release {
				return testRelease(t, "a", "1", 1, 1, []record.StorePath{bash}, oldInputs)
			},
			after: func(t *testing.T) *Release {
				return testRelease(t, "a", "1", 1, 1, []record.StorePath{bash}, oldInputs)
			},
			check: func(t *testing.T, r *record.Changes) {
				if !r.Same() || len(r.Inputs) != 0 {
					t.Errorf("Same() = %v, inputs %+v; want the same release, nothing moved", r.Same(), r.Inputs)
				}
				for _, p := range r.Platforms {
					if p.SizeDelta != 0 || p.Added != nil || p.Removed != nil {
						t.Errorf("%s changed: %+v", p.Platform, p)
					}
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, compare(tt.before(t), tt.after(t), false, tt.threshold))
		})
	}
}

// stripped removes a release's attestations and version annotation, as an
// unsigned release has neither SBOM nor provenance.
func stripped(r *Release) *Release {
	for i := range r.Images {
		r.Images[i].sbom, r.Images[i].prov = nil, nil
	}
	r.Version = ""
	return r
}

func TestParseThreshold(t *testing.T) {
	tests := []struct {
		in      string
		want    float64
		wantErr string
	}{
		{in: "10%", want: 0.10},
		{in: "2.5%", want: 0.025},
		{in: "0%", want: 0},
		{in: " 150% ", want: 1.5},
		{in: "10", wantErr: "give a percentage of the previous size"},
		{in: "0.1", wantErr: "such as 10%"},
		{in: "-5%", wantErr: "0% or more"},
		{in: "ten%", wantErr: "0% or more"},
		{in: "NaN%", wantErr: "0% or more"},
	}
	for _, tt := range tests {
		got, err := ParseThreshold(tt.in)
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ParseThreshold(%q) = %v, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || got != tt.want):
			t.Errorf("ParseThreshold(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseRef(t *testing.T) {
	repo, _ := name.NewRepository("127.0.0.1:5000/agent-images/pi", name.Insecure)
	digest := "sha256:" + strings.Repeat("ab", 32)
	for _, tt := range []struct{ in, want, wantErr string }{
		{in: "latest", want: "127.0.0.1:5000/agent-images/pi:latest"},
		{in: "2026-05-01", want: "127.0.0.1:5000/agent-images/pi:2026-05-01"},
		{in: digest, want: "127.0.0.1:5000/agent-images/pi@" + digest},
		{in: "sha256:abc", wantErr: "sha256:abc is not a digest: want sha256: and 64 hex digits"},
		{in: "ghcr.io/x/pi:latest", wantErr: "ghcr.io/x/pi:latest: give a tag of 127.0.0.1:5000/agent-images/pi"},
		{in: "bad!tag", wantErr: "bad!tag is not a valid tag"},
	} {
		got, err := ParseRef(repo, tt.in)
		switch {
		case tt.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantErr)):
			t.Errorf("ParseRef(%q) = %v, %v; want an error starting %q", tt.in, got, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || got.String() != tt.want || got.Context().Registry != repo.Registry):
			t.Errorf("ParseRef(%q) = %v, %v; want %s in the same (insecure) registry", tt.in, got, err, tt.want)
		}
	}
}
