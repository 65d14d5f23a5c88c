package flake

import (
	"os"
	"os/exec"
	"strings"
)

// Origin is the web address of the repository a local flake's git work
// tree was cloned from (its remote "origin"), for the source annotation and
// the provenance. Empty when the flake is not local, not in git, or its
// origin is not a web address (https, or GitHub's ssh form): an address
// that might name someone else's repository is worse than none.
func (f Flake) Origin() string {
	dir := strings.TrimPrefix(strings.TrimPrefix(f.Ref, "path:"), "git+file://")
	dir, _, _ = strings.Cut(dir, "?")
	if dir == "" {
		dir = "."
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
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
