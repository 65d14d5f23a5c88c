package main

import (
	"strings"
	"testing"
)

// TestPruneFlagErrors: a bad policy is refused by name before any call to
// GitHub or the registry (there is no token here, so one would fail
// differently).
func TestPruneFlagErrors(t *testing.T) {
	t.Setenv("GITHUB_TOKEN", "")
	t.Setenv("GH_TOKEN", "")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "keep nothing", args: []string{"--keep", "0"}, want: "--keep 0 would delete today's release"},
		{name: "age not an age", args: []string{"--pr-max-age", "fortnight"}, want: `age "fortnight": want days such as 14d`},
		{name: "age zero", args: []string{"--pr-max-age", "0d"}, want: `age "0d": want a positive age`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := run(t, append([]string{"prune", "--registry", "ghcr.io/acme/agent-images"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("release prune %v = %v, want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
	// The policy is valid: what fails next is the missing token.
	if _, err := run(t, "prune", "--registry", "ghcr.io/acme/agent-images", "--keep", "7", "--pr-max-age", "36h"); err == nil || !strings.Contains(err.Error(), "no GitHub token") {
		t.Errorf("release prune with a valid policy and no token = %v, want the token error", err)
	}
}

func TestPruneHelpShowsDefaults(t *testing.T) {
	out, err := run(t, "prune", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--keep int", "(default 30)", "--pr-max-age age", "(default 14d)"} {
		if !strings.Contains(out, want) {
			t.Errorf("release prune --help lacks %q:\n%s", want, out)
		}
	}
}
