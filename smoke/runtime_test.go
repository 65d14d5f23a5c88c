package smoke

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

func TestCanRun(t *testing.T) {
	const enabledAarch64 = "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POCF\noffset 0\nmagic 7f454c46\n"
	tests := []struct {
		name    string
		host    string
		files   map[string]string // binfmt_misc entries; nil: not mounted
		plat    v1.Platform
		wantOK  bool
		wantHow string // substring
	}{
		{name: "native", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "amd64"}, wantOK: true, wantHow: "native"},
		{name: "not linux", host: "amd64", plat: v1.Platform{OS: "windows", Architecture: "amd64"}, wantHow: "windows images"},
		{
			name: "emulated", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "arm64"},
			files:  map[string]string{"status": "enabled\n", "qemu-aarch64": enabledAarch64},
			wantOK: true, wantHow: "emulated by qemu-aarch64 (/usr/libexec/qemu-binfmt/aarch64-binfmt-P)",
		},
		{
			name: "arm64 host runs amd64 under qemu-x86_64", host: "arm64", plat: v1.Platform{OS: "linux", Architecture: "amd64"},
			files:  map[string]string{"status": "enabled\n", "qemu-x86_64": "enabled\ninterpreter /usr/bin/qemu-x86_64\nflags: F\n"},
			wantOK: true, wantHow: "qemu-x86_64",
		},
		{name: "binfmt_misc not mounted", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "arm64"}, wantHow: "not mounted"},
		{
			name: "binfmt_misc disabled", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "arm64"},
			files: map[string]string{"status": "disabled\n", "qemu-aarch64": enabledAarch64}, wantHow: "binfmt_misc is disabled",
		},
		{
			name: "no entry", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "arm64"},
			files: map[string]string{"status": "enabled\n"}, wantHow: "no qemu-aarch64 binfmt entry",
		},
		{
			name: "entry disabled", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "arm64"},
			files: map[string]string{"status": "enabled\n", "qemu-aarch64": strings.Replace(enabledAarch64, "enabled", "disabled", 1)}, wantHow: "entry is disabled",
		},
		{
			name: "entry without F flag", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "arm64"},
			files: map[string]string{"status": "enabled\n", "qemu-aarch64": strings.Replace(enabledAarch64, "POCF", "POC", 1)}, wantHow: "lacks the F",
		},
		{name: "unknown architecture", host: "amd64", plat: v1.Platform{OS: "linux", Architecture: "mips64"}, wantHow: "no known qemu"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "binfmt_misc")
			if tc.files != nil {
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				for n, c := range tc.files {
					if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			oldDir, oldHost := binfmtDir, hostArch
			binfmtDir, hostArch = dir, tc.host
			t.Cleanup(func() { binfmtDir, hostArch = oldDir, oldHost })

			ok, how, err := CanRun(tc.plat)
			if err != nil {
				t.Fatalf("CanRun(%v) error: %v", tc.plat, err)
			}
			if ok != tc.wantOK || !strings.Contains(how, tc.wantHow) {
				t.Errorf("CanRun(%v) = %v, %q, want %v, containing %q", tc.plat, ok, how, tc.wantOK, tc.wantHow)
			}
		})
	}
}

func TestNewRuntimeUnknown(t *testing.T) {
	_, err := NewRuntime("lxc")
	if err == nil || !strings.Contains(err.Error(), "want podman or docker") {
		t.Errorf("NewRuntime(lxc) error = %v, want one naming podman and docker", err)
	}
}

func TestNewRuntimeNone(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := NewRuntime("")
	if err == nil || !strings.Contains(err.Error(), "no container runtime works") ||
		!strings.Contains(err.Error(), "podman is not installed") || !strings.Contains(err.Error(), "docker is not installed") {
		t.Errorf("NewRuntime(\"\") with empty PATH error = %v, want one explaining both", err)
	}
}

func TestOptions(t *testing.T) {
	img, want := caseImage(t, "amd64", false, func(tree, *v1.ConfigFile) {})
	tests := []struct {
		name    string
		opt     Option
		wantErr string
	}{
		{name: "platform without architecture", opt: WithPlatform(v1.Platform{OS: "linux"}), wantErr: "needs both"},
		{name: "platform disagreeing with config", opt: WithPlatform(v1.Platform{OS: "linux", Architecture: "arm64"}), wantErr: "image config says linux/amd64"},
		{name: "platform agreeing", opt: WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Test(t.Context(), img, want, tc.opt)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Test(%s) error = %v, want %q", tc.name, err, tc.wantErr)
			}
		})
	}
}

func TestExpectValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Expect)
	}{
		{name: "relative dir", edit: func(e *Expect) { e.Dirs = append(e.Dirs, "home/agent") }},
		{name: "unclean home", edit: func(e *Expect) { e.Home = "/home/agent/" }},
		{name: "bad env key", edit: func(e *Expect) { e.Env["A-B"] = "x" }},
		{name: "command with a space", edit: func(e *Expect) { e.Commands = append(e.Commands, "rm -rf") }},
		{name: "dirs without user", edit: func(e *Expect) { e.User = "" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := AgentDefaults("pi")
			tc.edit(&e)
			if err := e.validate(); err == nil {
				t.Errorf("validate(%s) = nil, want an error", tc.name)
			}
		})
	}
	if err := AgentDefaults("pi").validate(); err != nil {
		t.Errorf("AgentDefaults(pi).validate() = %v, want nil", err)
	}
}

// TestLoadRetriesLostLayer runs Load against an engine that fails its first
// load (a pull, or a load of an archive) the way podman does when a
// concurrent `image rm` deleted a shared layer, and checks the image is
// loaded on the second try; any other load error is reported at once.
func TestLoadRetriesLostLayer(t *testing.T) {
	img, err := random.Image(64, 2)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		failWith  string
		wantLoads int
		wantErr   string
	}{
		{name: "lost layer", failWith: `writing blob: locating layer for blob "sha256:4abd": layer not known`, wantLoads: 2},
		{name: "other error", failWith: "no space left on device", wantLoads: 1, wantErr: "no space left on device"},
	} {
		for _, pull := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, pull %v", tc.name, pull), func(t *testing.T) {
				dir := t.TempDir()
				// A fake engine: the first load fails with failWith, later loads
				// succeed; inspect answers with the image's config digest.
				script := `#!/bin/sh
dir=` + dir + `
case "$1" in
load|pull)
  echo x >>"$dir/loads"
  if [ "$(wc -l <"$dir/loads")" -eq 1 ]; then echo '` + tc.failWith + `' >&2; exit 125; fi ;;
image) [ "$2" = inspect ] && echo "sha256:` + cfg.Hex + `" ;;
esac
`
				bin := filepath.Join(dir, "fake-engine")
				if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
					t.Fatal(err)
				}
				rt := &cliRuntime{bin: bin, pull: pull}
				_, err := rt.Load(context.Background(), img)
				loads, _ := os.ReadFile(filepath.Join(dir, "loads"))
				if got := strings.Count(string(loads), "x"); got != tc.wantLoads {
					t.Errorf("Load ran load %d times, want %d", got, tc.wantLoads)
				}
				switch {
				case tc.wantErr == "" && err != nil:
					t.Errorf("Load() = %v, want the image loaded on the second try", err)
				case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
					t.Errorf("Load() = %v, want an error containing %q", err, tc.wantErr)
				}
			})
		}
	}
}
