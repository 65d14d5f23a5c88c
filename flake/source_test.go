package flake

import (
	"os/exec"
	"testing"
)

func TestWebURL(t *testing.T) {
	for remote, want := range map[string]string{
		"https://github.com/acme/my-images.git":            "https://github.com/acme/my-images",
		"https://github.com/acme/my-images":                "https://github.com/acme/my-images",
		"https://x-access-token:s3cret@github.com/acme/r":  "https://github.com/acme/r",
		"git@github.com:acme/my-images.git":                "https://github.com/acme/my-images",
		"ssh://git@github.com/acme/my-images.git":          "https://github.com/acme/my-images",
		"https://gitlab.example.com/group/sub/project.git": "https://gitlab.example.com/group/sub/project",
		"/srv/git/my-images.git":                           "",
		"git@gitlab.example.com:group/project.git":         "",
		"file:///srv/git/my-images":                        "",
		"https://user@example.com/path/with@sign/repo.git": "https://example.com/path/with@sign/repo",
		"http://insecure.example.com/acme/my-images.git":   "",
		"ssh://git@gitlab.example.com/group/project.git":   "",
		"": "",
	} {
		if got := webURL(remote); got != want {
			t.Errorf("webURL(%q) = %q, want %q", remote, got, want)
		}
	}
}

// A consumer's local release names the consumer's repository as its source,
// never this one.
func TestOrigin(t *testing.T) {
	dir := t.TempDir()
	if got := (Flake{Ref: dir}).Origin(); got != "" {
		t.Errorf("Origin(directory without git) = %q, want empty", got)
	}
	for _, args := range [][]string{{"init", "-q"}, {"remote", "add", "origin", "git@github.com:acme/my-images.git"}} {
		if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			t.Skipf("git %v: %v\n%s", args, err, out)
		}
	}
	for _, ref := range []string{dir, "path:" + dir, "git+file://" + dir + "?dir=sub"} {
		if got, want := (Flake{Ref: ref}).Origin(), "https://github.com/acme/my-images"; got != want {
			t.Errorf("Origin(%s) = %q, want %q", ref, got, want)
		}
	}
	if got := (Flake{Ref: "github:acme/my-images"}).Origin(); got != "" {
		t.Errorf("Origin(a remote flake) = %q, want empty", got)
	}
}
