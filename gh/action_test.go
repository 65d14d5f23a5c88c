package gh

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nothingnesses/agent-images/internal/testenv"
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
		}, []string{"--agent", "pi,codex", "--system", "x86_64-linux", "--flake", ".", "--push",
			"--registry", "ghcr.io/acme/agent-images", "--jobs", "4", "--key", "env://COSIGN_PRIVATE_KEY", "--tlog-upload",
			"--output", "out.json", "--tag", "v1.2.0", "--tag", "stable", "--tag", "nightly",
			"--override-input", "nixpkgs=github:NixOS/nixpkgs", "--runtime", "podman"}},
		{"several registries, by newline or comma", map[string]string{"PUSH": "true", "OUTPUT": "",
			"REGISTRY": " ghcr.io/acme/agent-images\ndocker.io/acme , quay.io/acme\n\n"},
			[]string{"--all", "--push", "--registry", "ghcr.io/acme/agent-images", "--registry", "docker.io/acme", "--registry", "quay.io/acme"}},
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
