package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/pipeline"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

func TestDefaultRegistry(t *testing.T) {
	tests := []struct {
		name, actions, repository, want string
	}{
		{name: "this repository", actions: "true", repository: "nothingnesses/agent-images", want: "ghcr.io/nothingnesses/agent-images"},
		{name: "a consumer, lower-cased", actions: "true", repository: "Acme/My-Images", want: "ghcr.io/acme/my-images"},
		{name: "outside Actions", actions: "", repository: "acme/my-images", want: ""},
		{name: "no repository", actions: "true", repository: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GITHUB_ACTIONS", tt.actions)
			t.Setenv("GITHUB_REPOSITORY", tt.repository)
			if got := defaultRegistry(); got != tt.want {
				t.Errorf("defaultRegistry() with GITHUB_ACTIONS=%q GITHUB_REPOSITORY=%q = %q, want %q", tt.actions, tt.repository, got, tt.want)
			}
		})
	}
}

// Every command that needs a registry says, outside Actions, how to name one.
func TestRegistryRequiredOutsideActions(t *testing.T) {
	t.Setenv("GITHUB_ACTIONS", "")
	t.Setenv("GITHUB_REPOSITORY", "")
	t.Setenv("GITHUB_TOKEN", "x")
	for _, args := range [][]string{
		{"--agent", "pi", "--push", "--sign=false", "--flake", t.TempDir()},
		{"verify", "--agent", "pi", "--key", "cosign.pub"},
		{"prune", "--repository", "acme/my-images"},
	} {
		_, err := run(t, args...)
		if err == nil || !strings.Contains(err.Error(), "--registry") || !strings.Contains(err.Error(), "ghcr.io/OWNER/REPO") {
			t.Errorf("release %s = %v, want an error asking for --registry", strings.Join(args, " "), err)
		}
	}
}

// Under Actions the source is the workflow's repository; elsewhere the
// flake's git origin (flake.Origin).
func TestSourceOf(t *testing.T) {
	t.Setenv("GITHUB_REPOSITORY", "")
	dir := t.TempDir()
	for _, args := range [][]string{{"init", "-q"}, {"remote", "add", "origin", "git@github.com:acme/my-images.git"}} {
		if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			t.Skipf("git %v: %v\n%s", args, err, out)
		}
	}
	if got, want := sourceOf(flake.Flake{Ref: dir}), "https://github.com/acme/my-images"; got != want {
		t.Errorf("sourceOf(%s) = %q, want %q", dir, got, want)
	}
	t.Setenv("GITHUB_REPOSITORY", "acme/other")
	t.Setenv("GITHUB_SERVER_URL", "https://github.example.com")
	if got, want := sourceOf(flake.Flake{Ref: dir}), "https://github.example.com/acme/other"; got != want {
		t.Errorf("sourceOf under Actions = %q, want %q", got, want)
	}
}

// --source names the repository releasing in place of what the environment
// says; an address registries could not link to, or that holds a secret,
// is refused before the flake is read (the flake is an empty directory).
func TestSourceFlag(t *testing.T) {
	t.Setenv("GITHUB_ACTIONS", "")
	t.Setenv("GITHUB_REPOSITORY", "nothingnesses/agent-images")
	for _, cmd := range [][]string{nil, {"build"}, {"merge"}} {
		for source, want := range map[string]string{
			"http://github.com/acme/r":           "--source: \"http://github.com/acme/r\" is not an https address",
			"https://user:s3cret@github.com/a/r": "--source: the address holds credentials",
			"https://github.com/acme/r?ref=main": "has a query or fragment",
			"github.com/acme/agent-images":       "is not an https address",
		} {
			args := append(append([]string{}, cmd...), "--agent", "pi", "--push", "--registry", "localhost:5000/x",
				"--flake", t.TempDir(), "--sign=false", "--source", source)
			_, err := run(t, args...)
			if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("release %s = %v, want an error containing %q and no password", strings.Join(args, " "), err, want)
			}
		}
	}

	f := releaseFlags{flakeFlags: flakeFlags{flake: t.TempDir(), agents: []string{"pi"}}}
	o, err := f.options()
	if err != nil || o.Source != "https://github.com/nothingnesses/agent-images" {
		t.Errorf("options() without --source: Source %q, %v; want the workflow's repository", o.Source, err)
	}
	f.o.Source = "https://github.com/acme/agent-images"
	if o, err = f.options(); err != nil || o.Source != f.o.Source {
		t.Errorf("options() with --source %s: Source %q, %v", f.o.Source, o.Source, err)
	}
}

// The commit no flag or GITHUB_SHA names is the flake's, from its metadata:
// the HEAD of a clean git work tree, none for a dirty one (split mode's
// staging tags then take the Actions run's id).
func TestCommitFromTheFlake(t *testing.T) {
	testenv.Require(t, "nix", "git")
	testenv.Setenv(t)
	t.Setenv("GITHUB_SHA", "")
	t.Setenv("GITHUB_RUN_ID", "4711")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "flake.nix"), []byte("{ outputs = _: { }; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "flake.nix"}, {"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "x"}} {
		if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	head, err := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	commit := func(flag string) (string, string) {
		t.Helper()
		f := releaseFlags{flakeFlags: flakeFlags{flake: dir, agents: []string{"pi"}}, o: pipeline.Options{Commit: flag}}
		o, err := f.options()
		if err == nil {
			err = readFlake(t.Context(), &o)
		}
		if err != nil || o.Metadata == nil {
			t.Fatalf("options and readFlake = %v, metadata %v", err, o.Metadata)
		}
		return o.Commit, o.StagingKey
	}
	if got, key := commit(""); got != strings.TrimSpace(string(head)) || key != "" {
		t.Errorf("commit of a clean flake = %q (staging key %q), want HEAD %s", got, key, head)
	}
	if got, _ := commit("0123456"); got != "0123456" {
		t.Errorf("commit with --commit = %q, want the flag's", got)
	}
	t.Setenv("GITHUB_SHA", "abcdef0")
	if got, _ := commit(""); got != "abcdef0" {
		t.Errorf("commit under Actions = %q, want GITHUB_SHA", got)
	}
	t.Setenv("GITHUB_SHA", "")
	if err := os.WriteFile(filepath.Join(dir, "flake.nix"), []byte("{ outputs = _: { x = 1; }; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, key := commit(""); got != "" || key != "4711" {
		t.Errorf("commit of a dirty flake = %q (staging key %q), want none and the run id", got, key)
	}
}
