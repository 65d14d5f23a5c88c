package gh

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// TestRunReleaseArgs runs the Action's argument builder with a `release`
// that records its argv: every input becomes exactly the arguments it
// should, and shell syntax in an input stays text.
func TestRunReleaseArgs(t *testing.T) {
	testenv.Require(t, "bash")
	script := filepath.Join(testenv.RepoRoot(t), ".github", "scripts", "run-release.sh")
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"defaults release every agent into a layout", map[string]string{},
			[]string{"--all", "--output", "release.json"}},
		{"push with a key, tags and extra arguments", map[string]string{
			"AGENTS": "pi,codex", "SYSTEMS": "x86_64-linux", "PUSH": "true", "REGISTRY": "ghcr.io/acme/agent-images",
			"KEY": "env://COSIGN_PRIVATE_KEY", "TLOG_UPLOAD": "true", "TAGS": "v1.2.0, stable\nnightly", "JOBS": "4",
			"FLAKE": ".", "OUTPUT": "out.json", "EXTRA_ARGS": "--override-input nixpkgs=github:NixOS/nixpkgs\n--runtime podman",
		}, []string{"--agent", "pi", "--agent", "codex", "--system", "x86_64-linux", "--flake", ".", "--push",
			"--registry", "ghcr.io/acme/agent-images", "--jobs", "4", "--key", "env://COSIGN_PRIVATE_KEY", "--tlog-upload",
			"--output", "out.json", "--tag", "v1.2.0", "--tag", "stable", "--tag", "nightly",
			"--override-input", "nixpkgs=github:NixOS/nixpkgs", "--runtime", "podman"}},
		{"several registries, by newline or comma", map[string]string{"PUSH": "true", "OUTPUT": "",
			"REGISTRY": " ghcr.io/acme/agent-images\ndocker.io/acme , quay.io/acme\n\n"},
			[]string{"--all", "--push", "--registry", "ghcr.io/acme/agent-images", "--registry", "docker.io/acme", "--registry", "quay.io/acme"}},
		// A YAML block of one agent per line is a list, never one value
		// with a newline in it (which release would refuse).
		{"agents and systems one per line", map[string]string{"AGENTS": "pi\ncodex\n", "SYSTEMS": " x86_64-linux\naarch64-linux", "OUTPUT": ""},
			[]string{"--agent", "pi", "--agent", "codex", "--system", "x86_64-linux", "--system", "aarch64-linux"}},
		{"all on a line of its own", map[string]string{"AGENTS": "all\n", "OUTPUT": ""}, []string{"--all"}},
		{"signing off", map[string]string{"PUSH": "true", "SIGN": "false", "OUTPUT": ""},
			[]string{"--all", "--push", "--sign=false"}},
		{"matrix", map[string]string{"COMMAND": "matrix", "AGENTS": "pi", "RUNNER_ARM": "my-arm", "PUSH": "true", "KEY": "k"},
			[]string{"matrix", "--agent", "pi", "--json", "--runner", "aarch64-linux=my-arm"}},
		// Changed-only compares with what the publishing jobs would write:
		// their registry, signing identity and tags.
		{"matrix of what changed", map[string]string{"COMMAND": "matrix", "CHANGED_ONLY": "true", "REGISTRY": "ghcr.io/acme/x", "INSECURE": "true",
			"KEY": "env://K", "OUTPUT": "unchanged.json", "TAGS": "v1", "GIT_TAG": "v1.2.3"},
			[]string{"matrix", "--json", "--changed-only", "--registry", "ghcr.io/acme/x", "--insecure", "--key", "env://K",
				"--output", "unchanged.json", "--git-tag", "v1.2.3", "--tag", "v1"}},
		{"build signs what it pushes and records it", map[string]string{"COMMAND": "build", "AGENTS": "pi", "SYSTEMS": "aarch64-linux", "PUSH": "true", "INSECURE": "true", "KEY": "k", "TAGS": "x", "OUTPUT": "build.json"},
			[]string{"build", "--agent", "pi", "--system", "aarch64-linux", "--push", "--insecure", "--key", "k", "--output", "build.json"}},
		{"merge", map[string]string{"COMMAND": "merge", "AGENTS": "pi", "PUSH": "true", "OUTPUT": "release-pi.json", "FROM": "records"},
			[]string{"merge", "--agent", "pi", "--output", "release-pi.json", "--from", "records"}},
		// The default push: false used to make merge publish unsigned; merge
		// always pushes, so it always gets the signing flags.
		{"merge with the default push signs", map[string]string{"COMMAND": "merge", "AGENTS": "pi", "KEY": "env://K", "OUTPUT": ""},
			[]string{"merge", "--agent", "pi", "--key", "env://K"}},
		{"merge with signing off says so", map[string]string{"COMMAND": "merge", "AGENTS": "pi", "SIGN": "false", "OUTPUT": ""},
			[]string{"merge", "--agent", "pi", "--sign=false"}},
		{"shell syntax in inputs is text", map[string]string{
			"AGENTS": "pi$(touch pwned)", "TAGS": "`touch pwned`;x", "EXTRA_ARGS": "$(touch pwned) *", "OUTPUT": "",
		}, []string{"--agent", "pi$(touch pwned)", "--tag", "`touch pwned`;x", "$(touch", "pwned)", "*"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			bin := filepath.Join(dir, "bin")
			if err := os.Mkdir(bin, 0o755); err != nil {
				t.Fatal(err)
			}
			record := filepath.Join(dir, "argv")
			stub := "#!/usr/bin/env bash\nprintf '%s\\n' \"$@\" >" + record + "\n"
			if err := os.WriteFile(filepath.Join(bin, "release"), []byte(stub), 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("bash", script)
			cmd.Dir = dir
			cmd.Env = []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "OUTPUT=release.json"}
			for k, v := range tt.env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("run-release.sh: %v\n%s", err, out)
			}
			data, err := os.ReadFile(record)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("run-release.sh(%v) = release %q, want %q", tt.env, got, tt.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
				t.Errorf("an input ran a command")
			}
		})
	}

	// The secrets given as inputs reach release under cosign's names, and
	// nothing the script prints holds them or the arguments.
	t.Run("signing secrets", func(t *testing.T) {
		dir := t.TempDir()
		stub := "#!/usr/bin/env bash\nenv >" + filepath.Join(dir, "env") + "\n"
		if err := os.WriteFile(filepath.Join(dir, "release"), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("bash", script)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + dir + ":" + os.Getenv("PATH"), "PUSH=true", "KEY=env://COSIGN_PRIVATE_KEY",
			"SIGNING_KEY=-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nKEYMATERIAL\n", "SIGNING_PASSWORD=PASSWORD-1234",
			"EXTRA_ARGS=--override-input llm-agents=git+https://user:TOKEN-5678@example.com/x"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("run-release.sh: %v\n%s", err, out)
		}
		for _, secret := range []string{"KEYMATERIAL", "PASSWORD-1234", "TOKEN-5678"} {
			if strings.Contains(string(out), secret) {
				t.Errorf("run-release.sh printed %q:\n%s", secret, out)
			}
		}
		env, err := os.ReadFile(filepath.Join(dir, "env"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"COSIGN_PRIVATE_KEY=-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nKEYMATERIAL", "COSIGN_PASSWORD=PASSWORD-1234"} {
			if !strings.Contains(string(env), want) {
				t.Errorf("release's environment lacks %q", want)
			}
		}
		if strings.Contains(string(env), "SIGNING_") {
			t.Errorf("release's environment still has the input variables SIGNING_*")
		}
	})

	t.Run("build without an agent", func(t *testing.T) {
		cmd := exec.Command("bash", script)
		cmd.Env = append(os.Environ(), "COMMAND=build", "AGENTS=all")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "needs one agent") {
			t.Errorf("run-release.sh(build, all) = %v %s, want an error asking for one agent", err, out)
		}
	})
}

// actionStep is one step of action.yml, as far as these tests read it.
type actionStep struct {
	Name string            `yaml:"name"`
	ID   string            `yaml:"id"`
	Uses string            `yaml:"uses"`
	Run  string            `yaml:"run"`
	With map[string]string `yaml:"with"`
	Env  map[string]string `yaml:"env"`
}

func actionSteps(t *testing.T) []actionStep {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var action struct {
		Runs struct {
			Steps []actionStep `yaml:"steps"`
		} `yaml:"runs"`
	}
	if err := yaml.Unmarshal(data, &action); err != nil {
		t.Fatalf("action.yml: %v", err)
	}
	return action.Runs.Steps
}

// TestActionGoCacheForConsumers: in a consumer's workflow the Action is
// checked out under the runner's _actions directory, outside the
// consumer's workspace. setup-go hashes cache-dependency-path with
// @actions/glob, which skips files outside GITHUB_WORKSPACE, so with its
// cache on and the Action's go.sum as that path the key has no hash and
// the cache never restores (setup-go warns and goes on). The Action must
// leave setup-go's cache off and key its own cache on its go.sum: this test
// runs the key step as a consumer's runner would (the Action and the
// workspace in two directories) and checks the key follows go.sum. What it
// cannot show is a cache restored on GitHub's cache service.
func TestActionGoCacheForConsumers(t *testing.T) {
	testenv.Require(t, "bash", "go", "sha256sum")
	steps := actionSteps(t)
	var setupGo, key, cache *actionStep
	for i, s := range steps {
		switch {
		case strings.HasPrefix(s.Uses, "actions/setup-go@"):
			setupGo = &steps[i]
		case s.ID == "go-cache":
			key = &steps[i]
		case strings.HasPrefix(s.Uses, "actions/cache@"):
			cache = &steps[i]
		}
	}
	if setupGo == nil {
		t.Fatal("action.yml has no actions/setup-go step")
	}
	if c := setupGo.With["cache"]; c != "false" {
		// A consumer's layout on GitHub's runners.
		dep := strings.ReplaceAll(setupGo.With["cache-dependency-path"], "${{ github.action_path }}", "/home/runner/work/_actions/nothingnesses/agent-images/v1")
		dep = strings.ReplaceAll(dep, "${{ github.workspace }}", "/home/runner/work/my-images/my-images")
		if dep == "" || !strings.HasPrefix(dep, "/home/runner/work/my-images/my-images/") {
			t.Errorf("setup-go caches (cache: %q) keyed on %q: outside the consumer's workspace setup-go hashes nothing and the cache never restores; want cache: false and the Action's own cache", c, dep)
		}
	}
	if key == nil || cache == nil {
		t.Fatalf("action.yml lacks the go-cache key step (%v) or the actions/cache step (%v) that key the Go caches on the Action's go.sum", key != nil, cache != nil)
	}
	if cache.With["key"] != "${{ steps.go-cache.outputs.key }}" ||
		!strings.Contains(cache.With["path"], "steps.go-cache.outputs.modcache") || !strings.Contains(cache.With["path"], "steps.go-cache.outputs.gocache") {
		t.Errorf("actions/cache with %v: want the key and both directories of the go-cache step", cache.With)
	}

	// The key step, run with the Action and the workspace apart.
	runKey := func(gosum string) map[string]string {
		t.Helper()
		actionPath, workspace := t.TempDir(), t.TempDir()
		if err := os.WriteFile(filepath.Join(actionPath, "go.sum"), []byte(gosum), 0o644); err != nil {
			t.Fatal(err)
		}
		output := filepath.Join(t.TempDir(), "output")
		cmd := exec.Command("bash", "-eo", "pipefail", "-c", key.Run)
		cmd.Dir = workspace
		cmd.Env = append(os.Environ(), "GITHUB_ACTION_PATH="+actionPath, "GITHUB_WORKSPACE="+workspace, "GITHUB_OUTPUT="+output,
			"RUNNER_OS=Linux", "RUNNER_ARCH=ARM64", "GO_VERSION=1.26.8")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go-cache step: %v\n%s", err, out)
		}
		data, err := os.ReadFile(output)
		if err != nil {
			t.Fatal(err)
		}
		outputs := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			k, v, _ := strings.Cut(line, "=")
			outputs[k] = v
		}
		return outputs
	}
	a, b := runKey("example.com/a v1.0.0 h1:a=\n"), runKey("example.com/a v1.0.1 h1:b=\n")
	if !strings.Contains(a["key"], "Linux-ARM64-go1.26.8-") || a["key"] == b["key"] {
		t.Errorf("cache keys for two go.sum files = %q and %q: want the runner, the Go version and a hash of the Action's go.sum", a["key"], b["key"])
	}
	for _, dir := range []string{"modcache", "gocache"} {
		if !filepath.IsAbs(a[dir]) {
			t.Errorf("go-cache step output %s = %q, want go env's directory", dir, a[dir])
		}
	}
}
