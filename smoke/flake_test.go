package smoke

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// flakeImage is one image of the flake with what the spec says about it.
type flakeImage struct {
	attr   string
	expect func(mainProgram string) Expect
}

// flakeImages are the default image, the six test images of the spec
// (../shared/seed/agent-images-README.txt, "Tests") and test-bare; the
// values below are the spec's, not read back from the flake, so a drift in
// either shows.
var flakeImages = []flakeImage{
	{attr: "pi", expect: AgentDefaults},
	{attr: "test-custom", expect: func(main string) Expect {
		e := UserDefaults(main, "dev", 1002, 100, "/home/dev", "/project")
		e.Commands = append(e.Commands, "hello")
		e.Env["CUSTOM_VAR"] = "custom-value"
		// Overridden, and exactly once; the other XDG defaults are kept.
		e.Env["XDG_CONFIG_HOME"] = "/home/dev/.custom-config"
		e.UniqueEnv = append(e.UniqueEnv, "CUSTOM_VAR")
		e.Dirs = append(e.Dirs, "/home/dev/.dev-cache", "/home/dev/.custom-config", "/home/dev/.my+app@v2", "/opt/dev-cache")
		// Only listed directories are chowned: mkdir -p's parents outside $HOME stay root's.
		e.RootOwned = []string{"/opt"}
		return e
	}},
	{attr: "test-minimal", expect: func(main string) Expect {
		e := AgentDefaults(main)
		// basePackages = bashInteractive coreutils cacert.
		e.Commands = []string{"sh", "bash", "ls", "whoami", "id"}
		e.Absent = []string{"git", "nix"}
		return e
	}},
	{attr: "test-bare", expect: func(main string) Expect {
		e := AgentDefaults(main)
		// basePackages = bashInteractive coreutils: no CA bundle in the
		// toolbox, yet SSL_CERT_FILE (in FileEnv) must name one in the image.
		e.Commands = []string{"sh", "bash", "ls", "whoami", "id"}
		e.Absent = []string{"git", "curl", "nix"}
		return e
	}},
	{attr: "test-nix", expect: func(main string) Expect {
		e := AgentDefaults(main)
		e.Absent = nil
		e.Commands = append(e.Commands, "nix")
		e.Nix = &NixExpect{Features: DefaultNixFeatures, ConfDir: "/etc/nix", BundledNixpkgs: true}
		return e
	}},
	{attr: "test-nix-custom", expect: func(main string) Expect {
		e := UserDefaults(main, "nixer", 1001, 100, "/home/nixer", "/workspace")
		e.Absent = nil
		e.Commands = append(e.Commands, "nix")
		e.Env["CUSTOM_VAR"] = "nix-custom-value"
		e.Nix = &NixExpect{Features: []string{"nix-command", "flakes", "pipe-operators"}, ConfDir: "/etc/nix", BundledNixpkgs: true}
		e.NixLd = &NixLdExpect{}
		return e
	}},
	{attr: "test-nix-ld", expect: func(main string) Expect {
		e := AgentDefaults(main)
		// A few of the default set mirrored from NixOS' programs.nix-ld.
		e.NixLd = &NixLdExpect{Libraries: []string{"zlib", "openssl", "curl", "systemd"}}
		return e
	}},
	{attr: "test-nix-ld-minimal", expect: func(main string) Expect {
		e := AgentDefaults(main)
		// nixLdLibraries replaces the defaults rather than extending them.
		e.NixLd = &NixLdExpect{Libraries: []string{"zlib", "openssl"}, OnlyLibraries: true}
		return e
	}},
}

var flakeSystems = selectedSystems([]flakeSystem{
	{"x86_64-linux", v1.Platform{OS: "linux", Architecture: "amd64"}},
	{"aarch64-linux", v1.Platform{OS: "linux", Architecture: "arm64"}},
})

type flakeSystem struct {
	system string
	plat   v1.Platform
}

// selectedSystems keeps the systems this run builds: a native CI runner sets
// AGENT_IMAGES_SYSTEM to its own.
func selectedSystems(all []flakeSystem) []flakeSystem {
	var out []flakeSystem
	for _, s := range all {
		if testenv.SystemSelected(s.system) {
			out = append(out, s)
		}
	}
	return out
}

// builtImage is what the flake says about one image and where nix put it.
type builtImage struct {
	Out   string `json:"out"`
	Image struct {
		MainProgram string `json:"mainProgram"`
		Version     string `json:"version"`
		Release     bool   `json:"release"`
		WithNixLd   bool   `json:"withNixLd"`
	} `json:"image"`
}

// buildFlakeImages builds every image the tests need with real nix against
// the stand-in inputs: one eval for the output paths and metadata of the
// test images and of the whole release set, then one nix build for all of
// them, so nix schedules them together (and CI, which built them already,
// pays only for the eval).
func buildFlakeImages(t *testing.T) map[string]map[string]builtImage {
	t.Helper()
	root := testenv.RepoRoot(t)
	var systems, attrs []string
	for _, s := range flakeSystems {
		systems = append(systems, fmt.Sprintf("%q = 0;", s.system))
	}
	for _, fi := range flakeImages {
		attrs = append(attrs, fmt.Sprintf("%q = 0;", fi.attr))
	}
	apply := fmt.Sprintf(`ps: builtins.mapAttrs (s: p: builtins.mapAttrs (a: d: { out = d.outPath; image = d.agentImage; })
		(builtins.intersectAttrs { %s } p // builtins.intersectAttrs (builtins.mapAttrs (a: d: 0)
			(builtins.removeAttrs p (builtins.filter (a: !(p.${a}.agentImage.release or false)) (builtins.attrNames p)))) p))
		(builtins.intersectAttrs { %s } ps)`, strings.Join(attrs, " "), strings.Join(systems, " "))
	evalArgs := append([]string{"eval", "--json", root + "#packages", "--apply", apply}, testenv.OverrideArgs(t)...)
	out := runNix(t, evalArgs...)
	var got map[string]map[string]builtImage
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("nix eval output: %v\n%s", err, out)
	}
	var installables []string
	for system, images := range got {
		for attr := range images {
			installables = append(installables, fmt.Sprintf("%s#packages.%s.%s", root, system, attr))
		}
	}
	slices.Sort(installables)
	buildArgs := append([]string{"build", "--no-link"}, testenv.OverrideArgs(t)...)
	runNix(t, append(buildArgs, installables...)...)
	return got
}

func runNix(t *testing.T, args ...string) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), "nix", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("nix %s: %v\n%s", strings.Join(args[:2], " "), err, lastLines(stderr.String(), 30))
	}
	return stdout.Bytes()
}

// loadArchive reads a docker-archive .tar or .tar.gz as a v1.Image. A gzip
// archive is unpacked to a temporary file first: tarball.Image re-reads the
// archive for every layer, and re-inflating it each time would be slow.
func loadArchive(t *testing.T, p string) v1.Image {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	magic, _ := br.Peek(2)
	if !bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		img, err := tarball.ImageFromPath(p, nil)
		if err != nil {
			t.Fatalf("tarball.ImageFromPath(%s): %v", p, err)
		}
		return img
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(t.TempDir(), filepath.Base(strings.TrimSuffix(p, ".gz")))
	w, err := os.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, zr); err != nil {
		t.Fatalf("inflating %s: %v", p, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(tmp, nil)
	if err != nil {
		t.Fatalf("tarball.ImageFromPath(%s): %v", p, err)
	}
	return img
}

var flakeBuild struct {
	once  sync.Once
	built map[string]map[string]builtImage
	err   string
}

// flakeImagesBuilt builds the images once for every test that needs them.
func flakeImagesBuilt(t *testing.T) map[string]map[string]builtImage {
	t.Helper()
	testenv.Require(t, "nix")
	testenv.Setenv(t)
	if _, err := os.Stat(filepath.Join(testenv.RepoRoot(t), "flake.nix")); err != nil {
		t.Fatalf("no flake.nix in the repository: %v", err)
	}
	flakeBuild.once.Do(func() {
		// A sub-test's Fatal would leave the once done with nothing built;
		// record the failure for every later caller instead.
		ok := t.Run("build", func(t *testing.T) { flakeBuild.built = buildFlakeImages(t) })
		if !ok {
			flakeBuild.err = "building the flake images failed (see the build sub-test)"
		}
	})
	if flakeBuild.err != "" {
		t.Fatal(flakeBuild.err)
	}
	return flakeBuild.built
}

// TestFlakeImages builds the flake's default and test images for both
// systems with real nix against the stand-in inputs and runs the catalogue
// on each in podman: natively for x86_64, under qemu-user for aarch64.
func TestFlakeImages(t *testing.T) {
	testenv.Require(t, "nix", "podman")
	built := flakeImagesBuilt(t)
	testFlakeImages(t, podman(t), built, nil)
}

// TestFlakeImagesDocker runs the default and the custom image in docker, the
// second runtime, when a daemon can start here.
func TestFlakeImagesDocker(t *testing.T) {
	rt := dockerRuntime(t)
	built := flakeImagesBuilt(t)
	testFlakeImages(t, rt, built, []string{"pi", "test-custom"})
}

// TestFlakeImagesUnknownUID runs the default, the withNix and the custom
// image as a uid and gid the image does not know and the runtime does not
// name, as Docker starts one with --user (here podman --passwd=false, which
// adds no passwd entry either): the any-uid catalogue passes, a user name
// included, and nothing skips. The name is looked up by a statically linked
// program (busybox's whoami and id offline, as a Go agent would) and, in the
// custom image, by a dynamically linked one (getent on glibc). Only the
// host's own system: nothing here depends on the architecture, and each CI
// job is native.
func TestFlakeImagesUnknownUID(t *testing.T) {
	testenv.Require(t, "nix", "podman")
	built := flakeImagesBuilt(t)
	rt := podman(t)
	for _, s := range flakeSystems {
		if s.plat.Architecture != hostArch {
			continue
		}
		for _, attr := range append(slices.Clone(runImages), "test-custom") {
			t.Run(s.system+"/"+attr, func(t *testing.T) {
				b, ok := built[s.system][attr]
				if !ok {
					t.Fatalf("the flake has no packages.%s.%s", s.system, attr)
				}
				if ok, how, err := CanRun(s.plat); err != nil || !ok {
					msg := fmt.Sprintf("%s images cannot run here: %s %v (scripts/setup-host.sh registers qemu)", s.system, how, err)
					if testenv.Strict() {
						t.Fatal(msg)
					}
					t.Skip(msg)
				}
				rep, err := Test(t.Context(), loadArchive(t, b.Out), AnyUser(""), WithRuntime(rt), WithPlatform(s.plat),
					WithRunFlags("--passwd=false", "--user", "4242:4242"))
				if err != nil {
					t.Fatalf("Test(%s) error: %v", attr, err)
				}
				t.Logf("%s", rep)
				for _, r := range rep.Failed() {
					t.Errorf("Test(%s) as uid 4242: %s", attr, r)
				}
				if got := checks(rep.Results, Skip); len(got) > 0 {
					t.Errorf("Test(%s) as uid 4242 skipped %q, want none", attr, got)
				}
				for _, r := range rep.Results {
					if r.Check == "run.user-name" && attr == "test-custom" && !strings.Contains(r.Detail, `getent passwd = "4242:x:4242:4242:`) {
						t.Errorf("Test(%s) as uid 4242: run.user-name did not look the user up with getent: %s", attr, r.Detail)
					}
				}
			})
		}
	}
}

func testFlakeImages(t *testing.T, rt Runtime, built map[string]map[string]builtImage, only []string) {
	for _, s := range flakeSystems {
		for _, fi := range flakeImages {
			if only != nil && !slices.Contains(only, fi.attr) {
				continue
			}
			t.Run(s.system+"/"+fi.attr, func(t *testing.T) {
				b, ok := built[s.system][fi.attr]
				if !ok {
					t.Fatalf("the flake has no packages.%s.%s", s.system, fi.attr)
				}
				if ok, how, err := CanRun(s.plat); err != nil || !ok {
					msg := fmt.Sprintf("%s images cannot run here: %s %v (scripts/setup-host.sh registers qemu)", s.system, how, err)
					if testenv.Strict() {
						t.Fatal(msg)
					}
					t.Skip(msg)
				}
				img := loadArchive(t, b.Out)
				want := fi.expect(b.Image.MainProgram)
				rep, err := Test(t.Context(), img, want, WithRuntime(rt), WithPlatform(s.plat))
				if err != nil {
					t.Fatalf("Test(%s) error: %v", fi.attr, err)
				}
				t.Logf("%s", rep)
				if rep.Mode != ModeContainer {
					t.Errorf("Test(%s) mode = %s (%s), want container", fi.attr, rep.Mode, rep.Reason)
				}
				for _, r := range rep.Failed() {
					t.Errorf("Test(%s): %s", fi.attr, r)
				}
				// Skips are allowed only where the offline stand-ins cannot
				// behave like the real thing, and must say so; with the real
				// inputs (the GitHub job) the check list below is empty.
				for _, r := range rep.Skipped() {
					if !strings.Contains(r.Detail, "stand-in") {
						t.Errorf("Test(%s) skipped %s for a reason other than a stand-in: %s", fi.attr, r.Check, r.Detail)
					}
				}
				wantSkip := wantStandinSkips(want)
				if got := checks(rep.Results, Skip); !slices.Equal(got, wantSkip) {
					t.Errorf("Test(%s) skipped %q, want %q", fi.attr, got, wantSkip)
				}
			})
		}
	}
}

// wantStandinSkips are the checks that need real Nix or nix-ld, which skip
// against the offline stand-ins; with the real inputs nothing may skip.
func wantStandinSkips(e Expect) []string {
	if testenv.RealInputs() {
		return nil
	}
	var s []string
	if e.NixLd != nil {
		s = append(s, "run.nix-ld-foreign-elf")
	}
	if e.Nix != nil {
		s = append(s, "run.nix-install", "run.nix-path-info", "run.nix-version")
		if e.Nix.BundledNixpkgs {
			s = append(s, "run.nix-path")
		}
	}
	slices.Sort(s)
	return s
}

// TestFlakeReleaseImages holds every agent image of the release set to
// AgentDefaults: statically on both systems, and in podman on the host's
// system (each agent answering --version). The emulated system runs pi and
// the test images in TestFlakeImages; running all thirty agents under qemu
// would add minutes for no check that differs by agent.
func TestFlakeReleaseImages(t *testing.T) {
	testenv.Require(t, "nix", "podman")
	built := flakeImagesBuilt(t)
	rt := podman(t)
	for _, s := range flakeSystems {
		var attrs []string
		for attr, b := range built[s.system] {
			if b.Image.Release {
				attrs = append(attrs, attr)
			}
		}
		slices.Sort(attrs)
		if len(attrs) < 20 {
			t.Errorf("%s release set has %d images (%q), want the agents of the spec", s.system, len(attrs), attrs)
		}
		for _, attr := range attrs {
			t.Run(s.system+"/"+attr, func(t *testing.T) {
				b := built[s.system][attr]
				want := AgentDefaults(b.Image.MainProgram)
				want.Labels["org.opencontainers.image.version"] = b.Image.Version
				opts := []Option{WithPlatform(s.plat)}
				if s.plat.Architecture == hostArch {
					opts = append(opts, WithRuntime(rt))
				}
				rep, err := Test(t.Context(), loadArchive(t, b.Out), want, opts...)
				if err != nil {
					t.Fatalf("Test(%s) error: %v", attr, err)
				}
				for _, r := range rep.Failed() {
					t.Errorf("Test(%s): %s", attr, r)
				}
				if n := len(rep.Skipped()); n > 0 {
					t.Errorf("Test(%s) skipped %d checks, want none:\n%s", attr, n, rep)
				}
			})
		}
	}
}
