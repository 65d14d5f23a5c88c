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

// TestPruneOnlyGHCR: GitHub's packages API deletes from ghcr.io alone, so
// of the registries a release goes to, prune takes the GHCR ones and says
// it skips the others; with none it refuses, before asking for a token.
func TestPruneOnlyGHCR(t *testing.T) {
	t.Setenv("GITHUB_TOKEN", "")
	t.Setenv("GH_TOKEN", "")
	t.Setenv("GITHUB_API_URL", "")
	if _, err := run(t, "prune", "--registry", "docker.io/acme", "--registry", "quay.io/acme"); err == nil ||
		!strings.Contains(err.Error(), "no GHCR registry to prune among docker.io/acme, quay.io/acme") {
		t.Errorf("release prune (no GHCR) = %v, want a refusal naming both", err)
	}
	out, err := run(t, "prune", "--registry", "ghcr.io/acme/agent-images,docker.io/acme")
	if err == nil || !strings.Contains(err.Error(), "no GitHub token") {
		t.Errorf("release prune (GHCR and Docker Hub) = %v, want to go on with GHCR and need the token", err)
	}
	if !strings.Contains(out, "docker.io/acme: not pruned") {
		t.Errorf("release prune (GHCR and Docker Hub) printed %q, want Docker Hub named as skipped", out)
	}
	// Another GitHub's API (Enterprise Server, or a test's) has its own
	// registry host: nothing is skipped.
	out, err = run(t, "prune", "--api-url", "http://127.0.0.1:1", "--registry", "127.0.0.1:2/acme/agent-images")
	if err == nil || !strings.Contains(err.Error(), "no GitHub token") || strings.Contains(out, "not pruned") {
		t.Errorf("release prune --api-url = %v, %q: want no registry skipped", err, out)
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
