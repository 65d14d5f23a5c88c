package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNullsInRecordsAreErrors: a build record or release.json with a null
// where an image or agent stands is refused by name, where it panicked.
func TestNullsInRecordsAreErrors(t *testing.T) {
	dir := t.TempDir()
	build := filepath.Join(dir, "build.json")
	report := filepath.Join(dir, "release.json")
	if err := os.WriteFile(build, []byte(`{"schema":"agent-images/build/v1","commit":"0123456","images":[null]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(report, []byte(`{"agents":[null]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GITHUB_OUTPUT", filepath.Join(dir, "output"))
	t.Setenv("GITHUB_STEP_SUMMARY", filepath.Join(dir, "summary"))
	for _, tt := range []struct {
		args []string
		want string
	}{
		{append([]string{"merge", "--from", build, "--registry", "127.0.0.1:1/x", "--insecure", "--sign=false", "--agent", "pi"}, standinArgs(t)...), "images[0] is null"},
		{[]string{"github", "notes", "--release-json", report, "--tag", "v1"}, "agents[0] is null"},
		{[]string{"github", "summary", "--release-json", report}, "agents[0] is null"},
	} {
		_, err := run(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("release %s = %v, want an error containing %q", strings.Join(tt.args[:2], " "), err, tt.want)
		}
	}
}

// TestControlCharactersInFlagsAreRefused: a newline in a list flag's value
// used to cut it at the first line (a tag moved, the rest dropped unseen);
// it is refused before anything is read, without repeating the value.
func TestControlCharactersInFlagsAreRefused(t *testing.T) {
	for _, args := range [][]string{
		{"--agent", "pi\ncodex"},
		{"--agent", "pi", "--tag", "v1\nlatest"},
		{"--agent", "pi", "--system", "x86_64-linux\r"},
		{"matrix", "--agent", "pi\tcodex"},
		{"--agent", "pi", "--registry", "ghcr.io/x\nSECRET"},
	} {
		_, err := run(t, args...)
		if err == nil || !strings.Contains(err.Error(), "holds a control character") || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("release %q = %v, want the flag refused for its control character, the value not repeated", args, err)
		}
	}
}

// TestNamesOutsideThePrefixAreRefused: a --registry path with "..", and an
// agent that is not one path component ("../codex"), are refused before
// anything is read or built: verify read outside the prefix, release built
// and then failed at push.
func TestNamesOutsideThePrefixAreRefused(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"verify", "--agent", "../codex", "--registry", "127.0.0.1:1/x", "--insecure", "--key", "cosign.pub"}, `agent "../codex" cannot be a repository name`},
		{[]string{"diff", "../codex", "--registry", "127.0.0.1:1/x", "--insecure"}, `agent "../codex" cannot be a repository name`},
		{append([]string{"--agent", "pi", "--push", "--registry", "127.0.0.1:1/ai/../evil", "--insecure", "--sign=false"}, standinArgs(t)...), `path part ".."`},
	} {
		_, err := run(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("release %q = %v, want an error containing %q", tt.args[:3], err, tt.want)
		}
	}
}

// TestOutputLinkIsRefused: --output through a symbolic link used to
// overwrite the link's target.
func TestOutputLinkIsRefused(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "release.json")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	_, err := run(t, "--agent", "pi", "--output", link)
	if err == nil || !strings.Contains(err.Error(), "is a symbolic link") {
		t.Errorf("release --output LINK = %v, want refused", err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("the link's target now holds %q", b)
	}
}
