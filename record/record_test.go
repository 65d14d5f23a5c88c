package record

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func hash(c string) v1.Hash { return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(c, 64)} }

// platforms are the OCI platforms of the systems the tests use.
var platforms = map[string]v1.Platform{
	"x86_64-linux":  {OS: "linux", Architecture: "amd64"},
	"aarch64-linux": {OS: "linux", Architecture: "arm64"},
}

func image(t *testing.T, sys string, digest string) *Image {
	t.Helper()
	img := &Image{Agent: "pi", System: sys, Platform: platforms[sys]}
	img.DrvPath = "/nix/store/00000000000000000000000000000000-pi-" + string(sys) + ".drv"
	img.Digest = hash(digest)
	img.Size = 1234
	img.Smoke = &Smoke{Mode: "container", Passed: 1, Skipped: []Check{{Check: "run.nix", Status: "skip", Detail: "stand-in"}}}
	img.Signature = &Signature{Signature: "r/pi:sha256-" + digest + ".sig", Attestations: "r/pi:sha256-" + digest + ".att",
		Predicates: []string{"https://cyclonedx.org/bom", "https://slsa.dev/provenance/v1"}}
	return img
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./record -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s changed:\n%s\nwant:\n%s\n(if on purpose: go test ./record -update, and tell readers of release.json)", name, got, want)
	}
}

// TestReportSchema pins release.json, which other tools read, and checks the
// GitHub side reads back what the pipeline writes.
func TestReportSchema(t *testing.T) {
	failed := &Image{Agent: "codex", System: "x86_64-linux", Platform: platforms["x86_64-linux"]}
	failed.Fail(errors.New("building codex/x86_64-linux: nix build: exit status 1"))
	rep := &Report{Registry: "ghcr.io/acme/agent-images", Registries: []string{"ghcr.io/acme/agent-images", "docker.io/acme"}, Commit: "0123456789abcdef0123456789abcdef01234567", Agents: []*Agent{
		{
			Agent: "pi", Version: "0.70.6", Repository: "ghcr.io/acme/agent-images/pi", Index: hash("a"),
			Created:   time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC),
			Platforms: []*Image{image(t, "x86_64-linux", "b"), image(t, "aarch64-linux", "c")},
			Tags:      []string{"latest", "0.70.6", "2026-11-27", "sha-0123456"}, Moved: []string{"0.70.6", "sha-0123456"},
			Kept:     []Kept{{Tag: "latest", Index: hash("d"), Created: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), Version: "0.71.0"}},
			Repaired: []string{"linux/arm64"}, Status: StageFailed, Error: "docker.io/acme/pi: pushing index: 503 Service Unavailable",
			Signing: &Signing{Mode: "key", Index: Signature{Signature: "ghcr.io/acme/agent-images/pi:sha256-" + strings.Repeat("a", 64) + ".sig", Added: []string{"signature"}},
				VerifyCommand: "cosign verify --key cosign.pub ghcr.io/acme/agent-images/pi@sha256:" + strings.Repeat("a", 64)},
		},
		{Agent: "codex", Version: "0.125.0", Platforms: []*Image{failed}, Status: StageFailed, Error: "not published: " + failed.Error},
	}}
	pi := rep.Agents[0]
	pi.Published = []*Publication{
		{Repository: pi.Repository, Status: StageDone, Moved: pi.Moved, Kept: pi.Kept, Repaired: pi.Repaired, Signing: pi.Signing},
		{Repository: "docker.io/acme/pi", Status: StageFailed, Error: "pushing index: 503 Service Unavailable"},
	}
	path := filepath.Join(t.TempDir(), "release.json")
	if err := rep.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	golden(t, "release.golden.json", data)
	back, err := ReadReport(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Agents[0]; got.Index != rep.Agents[0].Index || got.Platforms[1].Digest != hash("c") || !got.Created.Equal(rep.Agents[0].Created) {
		t.Errorf("ReadReport gave %+v, want what was written", got)
	}
	if got := back.Failed(); len(got) != 2 || got[0] != "pi" || got[1] != "codex" || !back.Agents[1].Platforms[0].Failed() {
		t.Errorf("read back: Failed() = %v, want pi (failed in one registry) and codex with its failed image", got)
	}
	if p := back.Agents[0].Published; len(p) != 2 || p[0].Failed() || !p[1].Failed() || p[1].Repository != "docker.io/acme/pi" {
		t.Errorf("read back: pi published %+v, want done in the first registry and failed in docker.io/acme/pi", p)
	}
}

func TestBuildRecord(t *testing.T) {
	dir := t.TempDir()
	b := &Build{Schema: BuildSchema, Commit: "0123456789abcdef0123456789abcdef01234567", StagingKey: "sha-0123456",
		Registry: "ghcr.io/acme/agent-images", Images: []*Image{image(t, "aarch64-linux", "c")}}
	if err := b.WriteFile(filepath.Join(dir, "build-pi-aarch64-linux.json")); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "build-pi-aarch64-linux.json"))
	golden(t, "build.golden.json", data)
	got, err := ReadBuilds(dir)
	if err != nil || len(got) != 1 || got[0].Images[0].Digest != hash("c") || got[0].Images[0].String() != "pi/aarch64-linux" {
		t.Fatalf("ReadBuilds = %+v, %v", got, err)
	}
	// A release.json is not a build record, and says so by name.
	if err := (&Report{}).WriteFile(filepath.Join(dir, "release-pi.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadBuilds(dir); err == nil || !strings.Contains(err.Error(), "release-pi.json is not a build record") {
		t.Errorf("ReadBuilds(with a release.json) = %v, want it named as not a build record", err)
	}
	if _, err := ReadBuilds(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no *.json file") {
		t.Errorf("ReadBuilds(empty) = %v, want an error", err)
	}
}

// TestNewest: of several build records naming one part, merge takes the
// highest attempt of one workflow run (a re-run's record beside the failed
// one); anything else it cannot order and says which records clash.
func TestNewest(t *testing.T) {
	rec := func(file, run string, attempt int) *Build {
		b := &Build{File: file}
		if run != "" {
			b.Run = &Run{ID: run, Attempt: attempt}
		}
		return b
	}
	first, second, third := rec("a1.json", "7", 1), rec("a2.json", "7", 2), rec("a3.json", "7", 3)
	tests := []struct {
		name    string
		builds  []*Build
		want    *Build
		wantErr []string
	}{
		{"one record", []*Build{first}, first, nil},
		{"one record of no run", []*Build{rec("x.json", "", 0)}, nil, nil},
		{"re-run wins", []*Build{first, second}, second, nil},
		{"in any order", []*Build{third, first, second}, third, nil},
		{"two runs", []*Build{first, rec("b.json", "8", 2)}, nil, []string{"2 build records", "a1.json of run 7 attempt 1", "b.json of run 8 attempt 2", "pass the records of one run"}},
		{"one attempt twice", []*Build{second, rec("c.json", "7", 2)}, nil, []string{"a2.json of run 7 attempt 2", "c.json of run 7 attempt 2"}},
		{"records of no run", []*Build{rec("x.json", "", 0), rec("y.json", "", 0)}, nil, []string{"x.json of no run", "y.json of no run"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Newest(tt.builds)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("Newest = %s, want an error", got.describe())
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("Newest = %v, want it to say %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Newest = %v", err)
			}
			want := tt.want
			if want == nil {
				want = tt.builds[0]
			}
			if got != want {
				t.Errorf("Newest = %s, want %s", got.describe(), want.describe())
			}
		})
	}
}

// FuzzParseReport: whatever a release.json holds, reading it never panics,
// and what it accepts can be walked without a nil check.
func FuzzParseReport(f *testing.F) {
	f.Add([]byte(`{"agents":[null]}`))
	f.Add([]byte(`{"agents":[{"agent":"pi","platforms":[null]}]}`))
	f.Add([]byte(`{"agents":[{"agent":"pi","platforms":[{"agent":"pi","system":"x86_64-linux"}],"published":[null]}]}`))
	if golden, err := os.ReadFile(filepath.Join("testdata", "release.golden.json")); err == nil {
		f.Add(golden)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseReport(data)
		if err != nil {
			return
		}
		r.Failed()
		for _, a := range r.Agents {
			for _, p := range a.Platforms {
				_ = p.String() + p.Agent
			}
			for _, p := range a.Published {
				p.Failed()
			}
		}
	})
}

// FuzzParseBuild: the same of a build record.
func FuzzParseBuild(f *testing.F) {
	f.Add([]byte(`{"schema":"agent-images/build/v1","images":[null]}`))
	f.Add([]byte(`{"schema":"agent-images/build/v1","images":[{"agent":"pi","system":"x86_64-linux"}],"run":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBuild(data)
		if err != nil {
			return
		}
		b.Failed()
		_ = b.describe()
		if _, err := Newest([]*Build{b, b}); err == nil && b.Run == nil {
			t.Errorf("Newest of two records without a run = nil error, want one")
		}
	})
}

func TestParseRefusesNulls(t *testing.T) {
	for _, in := range []string{`{"agents":[null]}`, `{"agents":[{"agent":"pi","platforms":[null]}]}`, `{"agents":[{"agent":"pi","published":[null]}]}`} {
		if _, err := ParseReport([]byte(in)); err == nil || !strings.Contains(err.Error(), "null") {
			t.Errorf("ParseReport(%s) = %v, want an error naming the null", in, err)
		}
	}
	if _, err := ParseBuild([]byte(`{"schema":"agent-images/build/v1","images":[null]}`)); err == nil || !strings.Contains(err.Error(), "images[0] is null") {
		t.Errorf("ParseBuild(images [null]) = %v, want images[0] is null", err)
	}
}

func TestWriteFileRefusesALink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "release.json")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	if err := (&Report{}).WriteFile(link); err == nil || !strings.Contains(err.Error(), "is a symbolic link") {
		t.Errorf("WriteFile(link) = %v, want refused", err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("the link's target now holds %q", b)
	}
}

func TestHeadline(t *testing.T) {
	for _, tt := range []struct {
		from, to, want string
	}{
		{"0.70.6", "0.71.0", "pi 0.70.6 -> 0.71.0"},
		{"", "0.71.0", "pi (version unknown) -> 0.71.0"},
		{"0.71.0", "0.71.0", "pi 0.71.0 (version unchanged)"},
		{"", "", "pi (version unknown) (version unchanged)"},
	} {
		r := &Changes{Agent: "pi", From: Compared{Version: tt.from}, To: Compared{Version: tt.to}}
		if got := r.Headline(); got != tt.want {
			t.Errorf("Headline(%q -> %q) = %q, want %q", tt.from, tt.to, got, tt.want)
		}
	}
}
