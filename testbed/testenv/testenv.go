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
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
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
// llm-agents keeps its own nixpkgs input (it does not follow ours), so that
// input is overridden too.
func StandinOverrides(t testing.TB) map[string]string {
	if RealInputs() {
		return map[string]string{}
	}
	root := RepoRoot(t)
	nixpkgs := "path:" + filepath.Join(root, "testdata", "standin", "nixpkgs")
	return map[string]string{
		"nixpkgs":            nixpkgs,
		"llm-agents":         "path:" + filepath.Join(root, "testdata", "standin", "llm-agents"),
		"llm-agents/nixpkgs": nixpkgs,
	}
}

// StandinOverridesWithAgents is StandinOverrides with the stand-in
// llm-agents replaced by a copy in a temporary directory whose agents.nix
// (the list of packages and their platforms) edit rewrites: how tests make
// llm-agents rename, drop or stop building an agent.
func StandinOverridesWithAgents(t testing.TB, edit func(agentsNix string) string) map[string]string {
	t.Helper()
	o := StandinOverrides(t)
	src := filepath.Join(RepoRoot(t), "testdata", "standin", "llm-agents")
	dir := t.TempDir()
	for _, f := range []string{"flake.nix", "agents.nix"} {
		data, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "agents.nix" {
			data = []byte(edit(string(data)))
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o["llm-agents"] = "path:" + dir
	return o
}

// OverrideArgs is StandinOverrides as nix command-line arguments, in a
// stable order.
func OverrideArgs(t testing.TB) []string {
	o := StandinOverrides(t)
	names := make([]string, 0, len(o))
	for n := range o {
		names = append(names, n)
	}
	sort.Strings(names)
	var args []string
	for _, n := range names {
		args = append(args, "--override-input", n, o[n])
	}
	return args
}

// NixConfig is the Nix configuration these machines need: flakes, no
// sandbox, no binary caches, aarch64 builds under qemu-user, and as many
// builds at once as there are cores, as on GitHub's runners.
const NixConfig = `experimental-features = nix-command flakes
max-jobs = auto
sandbox = false
substituters =
extra-platforms = aarch64-linux
build-users-group =
warn-dirty = false`

// Setenv puts NIX_CONFIG and CONTAINERS_CONF in the test's environment,
// unless the caller already set them. Under RealInputs the machine's own Nix
// configuration stays: it has the binary caches the real inputs come from,
// which NixConfig turns off.
func Setenv(t *testing.T) {
	t.Helper()
	if os.Getenv("NIX_CONFIG") == "" && !RealInputs() {
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

// RegistryOption configures StartRegistry.
type RegistryOption func(*registryConfig)

type registryConfig struct {
	user, password string
}

// WithBasicAuth makes the registry demand this user and password (htpasswd,
// over plain HTTP: for tests that plant a registry password).
func WithBasicAuth(user, password string) RegistryOption {
	return func(c *registryConfig) { c.user, c.password = user, password }
}

// StartRegistry starts Debian's docker-registry (the distribution registry)
// on a free loopback port with storage in a temporary directory, and stops it
// when the test ends. It returns "127.0.0.1:PORT".
func StartRegistry(t testing.TB, opts ...RegistryOption) string {
	t.Helper()
	Require(t, "docker-registry")
	r, err := RunRegistry(t.TempDir(), opts...)
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

// RegistryGOGC is the GOGC the test bed's registry runs with (see
// RunRegistry).
const RegistryGOGC = 400

// RunRegistry starts Debian's docker-registry on a free loopback port with
// its configuration and storage under dir, and waits until it answers. The
// benchmark uses it outside tests; Stop ends it.
func RunRegistry(dir string, opts ...RegistryOption) (*Registry, error) {
	var rc registryConfig
	for _, o := range opts {
		o(&rc)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	storage := filepath.Join(dir, "data")
	// The blob descriptor cache is Debian's packaged default; the access
	// log (a line per request, kept in memory here) is off so the
	// benchmark measures the registry, not its logging.
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, storage, addr)
	if rc.user != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(rc.password), bcrypt.MinCost)
		if err != nil {
			return nil, err
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(rc.user+":"+string(hash)+"\n"), 0o600); err != nil {
			return nil, err
		}
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: test\n    path: %s\n", htpasswd)
	}
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	var logs bytes.Buffer
	cmd := exec.Command("docker-registry", "serve", cfgPath)
	// The registry's heap is a few MB, so at Go's default GOGC=100 it
	// collects garbage every few requests: a blob HEAD cost it about 1.3 ms
	// of CPU, at 400 about 0.9 ms (docs/benchmark.md). GHCR's cost per
	// request is not ours to pay; the test bed's registry should not charge
	// release for its collector either.
	cmd.Env = append(os.Environ(), fmt.Sprintf("GOGC=%d", RegistryGOGC))
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting docker-registry: %w", err)
	}
	r := &Registry{Addr: addr, Storage: storage, cmd: cmd}
	// With auth on, an anonymous /v2/ answers 401: that is ready too.
	ready := http.StatusOK
	if rc.user != "" {
		ready = http.StatusUnauthorized
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == ready {
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

// CPU is the user and system time the registry has used so far, from
// /proc: the benchmark subtracts two readings to learn what a run cost the
// registry that shares the machine with release.
func (r *Registry) CPU() (time.Duration, error) {
	return ProcessCPU(r.cmd.Process.Pid)
}

// ProcessCPU is the user and system time process pid has used so far,
// read from /proc/PID/stat (fields 14 and 15, in clock ticks of 1/100 s,
// the value Linux gives USER_HZ on every architecture).
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; the fields after its
	// closing parenthesis start at field 3.
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected %q", pid, b)
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// Stop ends the registry.
func (r *Registry) Stop() {
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
}

// Nix is one nix binary of the test bed and the configuration it runs with.
type Nix struct {
	Name, Bin, Config string
}

// Nixes are the nix binaries the tests that take every Nix run: the one on
// PATH ("current", with NIX_CONFIG) and, where the test bed names it with
// AGENT_IMAGES_OLD_NIX, the oldest release supports ("oldest", with
// AGENT_IMAGES_OLD_NIX_CONFIG).
func Nixes(t testing.TB) []Nix {
	t.Helper()
	Require(t, "nix")
	bin, err := exec.LookPath("nix")
	if err != nil {
		t.Fatal(err)
	}
	nixes := []Nix{{"current", bin, os.Getenv("NIX_CONFIG")}}
	if old := os.Getenv("AGENT_IMAGES_OLD_NIX"); old != "" {
		nixes = append(nixes, Nix{"oldest", old, os.Getenv("AGENT_IMAGES_OLD_NIX_CONFIG")})
	} else if Strict() {
		t.Fatal("AGENT_IMAGES_OLD_NIX is not set: source scripts/env.sh")
	}
	return nixes
}

// Use puts n first on PATH as nix, with its configuration (NixConfig when
// it has none), for the rest of the test.
func (n Nix) Use(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Symlink(n.Bin, filepath.Join(dir, "nix")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	config := n.Config
	if config == "" {
		config = NixConfig
	}
	t.Setenv("NIX_CONFIG", config)
	out, err := exec.Command("nix", "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", n.Bin, err)
	}
	t.Logf("%s nix: %s", n.Name, strings.TrimSpace(string(out)))
}
