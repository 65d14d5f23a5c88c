package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/testbed/testenv"
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
		{name: "age zero", args: []string{"--pr-max-age", "0d"}, want: `--pr-max-age 0d: want a positive age`},
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

// TestPruneWithTheActionsToken: a workflow's GITHUB_TOKEN may read and
// delete one package's versions but not list the owner's packages: GitHub
// answers that listing with 400 "Invalid argument." (cli/cli#9606). The
// handlers here answer as GitHub does for that token; a hand-written server
// because the fault is the point (gh's fake GitHub serves the same answer to
// the workflow under act, in TestActRelease). Without --agent, prune takes
// every agent the flake releases and reads each package by its own
// endpoint. What only GitHub can show is the token's real permissions.
func TestPruneWithTheActionsToken(t *testing.T) {
	testenv.Require(t, "nix")
	testenv.Setenv(t)
	var mu sync.Mutex
	var calls []string
	mux := http.NewServeMux()
	answer := func(w http.ResponseWriter, code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	record := func(r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, r.Method+" "+r.URL.Path)
	}
	mux.HandleFunc("GET /users/acme", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		answer(w, 200, map[string]any{"login": "acme", "type": "Organization"})
	})
	mux.HandleFunc("GET /orgs/acme/packages", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		answer(w, 400, map[string]any{"message": "Invalid argument.", "status": "400",
			"documentation_url": "https://docs.github.com/rest/packages/packages#list-packages-for-an-organization"})
	})
	mux.HandleFunc("GET /orgs/acme/packages/container/{name}/versions", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		answer(w, 200, []any{}) // nothing pushed yet: nothing to delete
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Setenv("GITHUB_TOKEN", "ghs_actions-token")
	t.Setenv("GH_TOKEN", "")

	out, err := run(t, append([]string{"prune", "--api-url", srv.URL, "--registry", "127.0.0.1:1/acme/agent-images", "--insecure"}, standinArgs(t)...)...)
	if err != nil {
		t.Fatalf("release prune (no --agent, Actions token) = %v\n%s\ncalls: %q", err, out, calls)
	}
	fl := flake.Flake{Ref: testenv.RepoRoot(t), Overrides: testenv.StandinOverrides(t)}
	targets, err := flake.Load(t.Context(), fl)
	if err != nil {
		t.Fatal(err)
	}
	agents := flake.Agents(targets)
	if len(agents) < 2 {
		t.Fatalf("the flake releases %v: the test wants several agents", agents)
	}
	for _, a := range agents {
		if !strings.Contains(out, a+": keep 0 versions, delete 0") {
			t.Errorf("release prune printed no plan for %s:\n%s", a, out)
		}
		want := "GET /orgs/acme/packages/container/agent-images/" + a + "/versions"
		found := false
		for _, c := range calls {
			found = found || c == want
		}
		if !found {
			t.Errorf("calls %q lack %s", calls, want)
		}
	}
	for _, c := range calls {
		if c == "GET /orgs/acme/packages" {
			t.Errorf("prune listed the owner's packages, which the Actions token may not")
		}
	}
}
