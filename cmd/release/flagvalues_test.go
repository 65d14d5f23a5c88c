package main

import (
	"strings"
	"testing"

	"github.com/nothingnesses/agent-images/flake"
)

func TestParseOverrideDoesNotEcho(t *testing.T) {
	_, _, err := parseOverride("llm-agents:git+https://u:TOKEN-1234@h/r")
	if err == nil || strings.Contains(err.Error(), "TOKEN-1234") || !strings.Contains(err.Error(), "NAME=FLAKEREF") {
		t.Errorf("parseOverride(no '=') = %v, want an error naming the form and not the value", err)
	}
}

func TestParseRunners(t *testing.T) {
	got, err := parseRunners([]string{"aarch64-linux=my-arm"})
	if err != nil || got[flake.Aarch64Linux] != "my-arm" || len(got) != 1 {
		t.Errorf("parseRunners(aarch64-linux=my-arm) = %v, %v, want my-arm for aarch64-linux", got, err)
	}
	for _, bad := range []string{"aarch64-linux", "aarch64-linux=", "riscv-linux=x"} {
		if _, err := parseRunners([]string{bad}); err == nil || !strings.Contains(err.Error(), "--runner") {
			t.Errorf("parseRunners(%q) = %v, want an error naming --runner", bad, err)
		}
	}
}

// A compression other than gzip or zstd is refused by name before the flake
// is read (an empty directory here); merge, which builds nothing, has none.
func TestCompressionFlag(t *testing.T) {
	t.Setenv("GITHUB_ACTIONS", "")
	for _, cmd := range [][]string{nil, {"build"}} {
		args := append(append([]string{}, cmd...), "--agent", "pi", "--push", "--registry", "localhost:5000/x",
			"--flake", t.TempDir(), "--sign=false", "--compression", "lz4")
		want := `--compression: compression "lz4" is not supported: use gzip or zstd`
		if _, err := run(t, args...); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("release %s = %v, want an error containing %q", strings.Join(args, " "), err, want)
		}
	}
	if _, err := run(t, "merge", "--compression", "zstd"); err == nil || !strings.Contains(err.Error(), "unknown flag: --compression") {
		t.Errorf("release merge --compression = %v, want an unknown flag", err)
	}
}
