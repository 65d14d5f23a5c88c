package main

import (
	"cmp"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/publish"
)

// defaultRegistry is the repository prefix without --registry: under GitHub
// Actions, the GHCR namespace of the repository whose workflow runs,
// ghcr.io/<owner>/<repo> (lower-cased, as GHCR requires), so a flake's
// images land beside their source whichever repository that is. Outside
// Actions there is none: a push from a workstation names its registry.
func defaultRegistry() string {
	if os.Getenv("GITHUB_ACTIONS") != "true" {
		return ""
	}
	return ghcrPrefix(os.Getenv("GITHUB_REPOSITORY"))
}

// ghcrPrefix is the GHCR namespace of a GitHub repository,
// ghcr.io/<owner>/<repo> lower-cased as GHCR requires; "" for no repository.
func ghcrPrefix(repo string) string {
	if repo == "" {
		return ""
	}
	return "ghcr.io/" + strings.ToLower(repo)
}

// githubServer is the GitHub the run is on: $GITHUB_SERVER_URL, else
// github.com.
func githubServer() string {
	return cmp.Or(strings.TrimSuffix(os.Getenv("GITHUB_SERVER_URL"), "/"), "https://github.com")
}

// registriesOrDefault are the repository prefixes given with --registry,
// or the default one; each checked as a prefix. With none given and
// no default, the error is missing (a question, or ending in a colon)
// followed by how to give one.
func registriesOrDefault(registries []string, missing string) ([]string, error) {
	if len(registries) == 0 {
		d := defaultRegistry()
		if d == "" {
			return nil, fmt.Errorf("%s pass --registry, e.g. ghcr.io/OWNER/REPO (under GitHub Actions it defaults to ghcr.io/<owner>/<repo> of the workflow's repository)", missing)
		}
		registries = []string{d}
	}
	// Checked as release checks them, before anything is read: a prefix
	// with credentials would be printed with them.
	for _, reg := range registries {
		if _, err := publish.ParsePrefix(reg, true); err != nil {
			return nil, fmt.Errorf("--registry: %w", err)
		}
	}
	return registries, nil
}

// sourceOf is the address of the repository releasing, for the source
// annotation and the provenance: the workflow's repository under GitHub
// Actions, else the flake's git origin (flake.Origin).
func sourceOf(fl flake.Flake) string {
	if repo := os.Getenv("GITHUB_REPOSITORY"); repo != "" {
		return githubServer() + "/" + repo
	}
	return fl.Origin()
}

// repository is agent's repository under the --registry prefix registry,
// checked as release checks it: an agent name that reaches outside the
// prefix ("../x") or that a registry cannot hold is refused.
func repository(registry, agent string, insecure bool) (name.Repository, error) {
	prefix, err := publish.ParsePrefix(registry, insecure)
	if err != nil {
		return name.Repository{}, fmt.Errorf("--registry: %w", err)
	}
	repo, err := prefix.Repository(agent)
	if err != nil {
		return name.Repository{}, fmt.Errorf("--agent: %w", err)
	}
	return repo, nil
}
