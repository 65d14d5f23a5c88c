package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// defaultRegistry is the repository prefix without --registry: under GitHub
// Actions, the GHCR namespace of the repository whose workflow runs,
// ghcr.io/<owner>/<repo> (lower-cased, as GHCR requires), so a flake's
// images land beside their source whichever repository that is. Outside
// Actions there is none: a push from a workstation names its registry.
func defaultRegistry() string {
	repo := os.Getenv("GITHUB_REPOSITORY")
	if os.Getenv("GITHUB_ACTIONS") != "true" || repo == "" {
		return ""
	}
	return "ghcr.io/" + strings.ToLower(repo)
}

// registryRequired is the hint of an error for a missing --registry.
const registryRequired = "pass --registry, e.g. ghcr.io/OWNER/REPO (under GitHub Actions it defaults to ghcr.io/<owner>/<repo> of the workflow's repository)"

// registriesOrDefault are the repository prefixes given with --registry,
// or the default one; each checked with checkRegistry. With none given and
// no default, the error is missing (a question, or ending in a colon)
// followed by how to give one.
func registriesOrDefault(registries []string, missing string) ([]string, error) {
	if len(registries) == 0 {
		d := defaultRegistry()
		if d == "" {
			return nil, fmt.Errorf("%s %s", missing, registryRequired)
		}
		registries = []string{d}
	}
	for _, reg := range registries {
		if err := checkRegistry(reg); err != nil {
			return nil, err
		}
	}
	return registries, nil
}

// sourceURL is the address of the repository the flake comes from, for the
// source annotation and the provenance: the workflow's repository under
// GitHub Actions, else the flake's git remote "origin" when it is a web
// address (https, or GitHub's ssh form). Empty when unknown: an address
// that might name someone else's repository is worse than none.
func sourceURL(flake string) string {
	if repo := os.Getenv("GITHUB_REPOSITORY"); repo != "" {
		server := os.Getenv("GITHUB_SERVER_URL")
		if server == "" {
			server = "https://github.com"
		}
		return server + "/" + repo
	}
	dir, ok := flakeDir(flake)
	if !ok {
		return ""
	}
	out, err := exec.Command("git", "-C", dir, "remote", "get-url", "origin").Output()
	if err != nil {
		return ""
	}
	return webURL(strings.TrimSpace(string(out)))
}

// webURL turns a git remote into the repository's web address.
func webURL(remote string) string {
	u := strings.TrimSuffix(remote, ".git")
	switch {
	case strings.HasPrefix(u, "https://"):
		host, path, _ := strings.Cut(strings.TrimPrefix(u, "https://"), "/")
		if _, h, ok := strings.Cut(host, "@"); ok {
			host = h // never publish credentials
		}
		return "https://" + host + "/" + path
	case strings.HasPrefix(u, "git@github.com:"):
		return "https://github.com/" + strings.TrimPrefix(u, "git@github.com:")
	case strings.HasPrefix(u, "ssh://git@github.com/"):
		return "https://github.com/" + strings.TrimPrefix(u, "ssh://git@github.com/")
	}
	return ""
}

// flakeDir is the local directory of a flake reference, if it names one.
func flakeDir(flake string) (string, bool) {
	dir := strings.TrimPrefix(strings.TrimPrefix(flake, "path:"), "git+file://")
	dir, _, _ = strings.Cut(dir, "?")
	fi, err := os.Stat(dir)
	return dir, err == nil && fi.IsDir()
}
