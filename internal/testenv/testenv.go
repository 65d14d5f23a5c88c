// Package testenv gives tests the real parts they run against: the repository
// root, the stand-in flake inputs, the Nix and Podman environment, and a
// distribution registry on a free loopback port.
//
// A test that needs a tool calls Require. On a developer's machine a missing
// tool skips the test with the reason; with AGENT_IMAGES_REQUIRE_E2E=1 (set by
// .ci/run after it installed everything) it fails instead, so CI never passes
// by skipping.
package testenv

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Strict reports whether missing tools are failures rather than skips.
func Strict() bool { return os.Getenv("AGENT_IMAGES_REQUIRE_E2E") == "1" }

// Require skips (or, when Strict, fails) the test unless every tool is on PATH.
func Require(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("%s is not installed (run scripts/setup-host.sh)", tool)
			if Strict() {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// RepoRoot is the directory holding flake.nix and go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// RealInputs reports whether tests build the flake from its own locked
// inputs (AGENT_IMAGES_REAL_INPUTS=1, as GitHub CI does) instead of the
// offline stand-ins.
func RealInputs() bool { return os.Getenv("AGENT_IMAGES_REAL_INPUTS") == "1" }

// SystemSelected reports whether tests should build images for system:
// AGENT_IMAGES_SYSTEM names the one system of a native CI runner; unset,
// every system is built.
func SystemSelected(system string) bool {
	want := os.Getenv("AGENT_IMAGES_SYSTEM")
	return want == "" || want == system
}

// StandinOverrides maps each flake input to its offline stand-in, in the
// form `nix --override-input NAME REF` takes; it is empty under RealInputs.
func StandinOverrides(t testing.TB) map[string]string {
	if RealInputs() {
		return map[string]string{}
	}
	root := RepoRoot(t)
	return map[string]string{
		"nixpkgs":    "path:" + filepath.Join(root, "testdata", "standin", "nixpkgs"),
		"llm-agents": "path:" + filepath.Join(root, "testdata", "standin", "llm-agents"),
	}
}

// OverrideArgs is StandinOverrides as nix command-line arguments.
func OverrideArgs(t testing.TB) []string {
	o := StandinOverrides(t)
	if len(o) == 0 {
		return nil
	}
	return []string{
		"--override-input", "nixpkgs", o["nixpkgs"],
		"--override-input", "llm-agents", o["llm-agents"],
	}
}

// NixConfig is the Nix configuration these machines need: flakes, no
// sandbox, no binary caches, and aarch64 builds under qemu-user.
const NixConfig = `experimental-features = nix-command flakes
sandbox = false
substituters =
extra-platforms = aarch64-linux
build-users-group =
warn-dirty = false`

// Setenv puts NIX_CONFIG and CONTAINERS_CONF in the test's environment,
// unless the caller already set them.
func Setenv(t *testing.T) {
	t.Helper()
	if os.Getenv("NIX_CONFIG") == "" {
		t.Setenv("NIX_CONFIG", NixConfig)
	}
	if os.Getenv("CONTAINERS_CONF") == "" {
		t.Setenv("CONTAINERS_CONF", filepath.Join(RepoRoot(t), "scripts", "containers.conf"))
	}
}

// FreePort returns a loopback port nothing listens on right now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// StartRegistry starts Debian's docker-registry (the distribution registry)
// on a free loopback port with storage in a temporary directory, and stops it
// when the test ends. It returns "127.0.0.1:PORT".
func StartRegistry(t testing.TB) string {
	t.Helper()
	Require(t, "docker-registry")
	r, err := RunRegistry(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r.Addr
}

// Registry is a running docker-registry.
type Registry struct {
	// Addr is "127.0.0.1:PORT".
	Addr string
	// Storage is the root of its filesystem storage.
	Storage string
	cmd     *exec.Cmd
}

// RunRegistry starts Debian's docker-registry on a free loopback port with
// its configuration and storage under dir, and waits until it answers. The
// benchmark uses it outside tests; Stop ends it.
func RunRegistry(dir string) (*Registry, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	storage := filepath.Join(dir, "data")
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, storage, addr)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	var logs bytes.Buffer
	cmd := exec.Command("docker-registry", "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting docker-registry: %w", err)
	}
	r := &Registry{Addr: addr, Storage: storage, cmd: cmd}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r, nil
			}
		}
		if time.Now().After(deadline) {
			r.Stop()
			return nil, fmt.Errorf("docker-registry on %s did not answer: %v\n%s", addr, err, strings.TrimSpace(logs.String()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop ends the registry.
func (r *Registry) Stop() {
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
}
