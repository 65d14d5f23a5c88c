package redact

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

func TestFlakeRef(t *testing.T) {
	tests := []struct{ in, want string }{
		{"github:NixOS/nixpkgs/nixos-unstable", "github:NixOS/nixpkgs/nixos-unstable"},
		{"github:o/r?ref=main&access_token=ghp_FAKE", "github:o/r"},
		{"git+https://user:TOKEN@git.example.com/o/r.git?ref=main#frag", "git+https://git.example.com/o/r.git"},
		{"git+https://TOKEN@git.example.com/o/r", "git+https://git.example.com/o/r"},
		{"https://example.com/x.tar.gz?token=abc", "https://example.com/x.tar.gz"},
		{"path:/tmp/tok=ghp_FAKE/x", "path:" + Hidden},
		{"path:./testdata/standin/nixpkgs", "path:" + Hidden},
		{"git+file:///home/me/secret-project", "git+file:" + Hidden},
		{"/home/me/flake", "path:" + Hidden},
		{"./flake", "path:" + Hidden},
		{"testdata/x", "path:" + Hidden},
	}
	for _, tt := range tests {
		if got := FlakeRef(tt.in); got != tt.want {
			t.Errorf("FlakeRef(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"user:SECRET@registry.example.com/agent-images", "registry.example.com/agent-images"},
		{"ghcr.io/o/agent-images", "ghcr.io/o/agent-images"},
		{"127.0.0.1:5000/x", "127.0.0.1:5000/x"},
		{"https://u:p@fulcio.internal/api?x=1#y", "https://fulcio.internal/api"},
		{"hashivault://release", "hashivault://release"},
		{"cosign.key", "cosign.key"},
		{".", "."},
	}
	for _, tt := range tests {
		if got := URL(tt.in); got != tt.want {
			t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestText: a message that quotes a reference, whole or in pieces, keeps
// none of its secrets and stays readable.
func TestFlakeText(t *testing.T) {
	// Nix 2.26 quotes references percent-encoded (the last two lines).
	refs := []string{"git+https://user:TOKEN1234@git.example.com/o/r?rev=1&key=QUERYSECRET", "path:/tmp/tok=ghp_FAKE/x"}
	msg := `error: cannot fetch 'git+https://user:TOKEN1234@git.example.com/o/r?rev=1&key=QUERYSECRET':
       fatal: Authentication failed for 'https://user:TOKEN1234@git.example.com/o/r/'
       (password TOKEN1234, key QUERYSECRET)
error: getting status of '/tmp/tok=ghp_FAKE/x/flake.nix': No such file or directory
updated input 'llm-agents': 'path:/tmp/tok=ghp_FAKE/x?narHash=sha256-abc'
… while fetching the input 'path:/tmp/tok%3Dghp_FAKE/x'
… while fetching the input 'git+https://user:TOKEN1234@git.example.com/o/r?key=QUERYSECRET%2B1&rev=1'`
	got := FlakeText(msg, refs...)
	for _, secret := range []string{"TOKEN1234", "QUERYSECRET", "ghp_FAKE", "user:"} {
		if strings.Contains(got, secret) {
			t.Errorf("Text() still holds %q:\n%s", secret, got)
		}
	}
	for _, kept := range []string{"git+https://git.example.com/o/r", "https://git.example.com/o/r/", "/flake.nix", "Authentication failed"} {
		if !strings.Contains(got, kept) {
			t.Errorf("Text() lost %q:\n%s", kept, got)
		}
	}
	if same := FlakeText("nothing to hide in github:o/r", "github:o/r"); same != "nothing to hide in github:o/r" {
		t.Errorf("Text() of a public ref = %q, want it unchanged", same)
	}
}

func TestURLError(t *testing.T) {
	key := "awskms://user:SECRET@kms.internal:4566/alias/release?token=QUERYTOKEN"
	err := URLError(&fs.PathError{Op: "open", Path: key, Err: fs.ErrNotExist}, key)
	if msg := err.Error(); strings.Contains(msg, "SECRET") || strings.Contains(msg, "QUERYTOKEN") ||
		!strings.Contains(msg, "awskms://kms.internal:4566/alias/release") || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("URLError() = %q (is ErrNotExist: %v), want the credentials and query gone, the address and the cause kept", msg, errors.Is(err, fs.ErrNotExist))
	}
	// A key file's path is the caller's own and stays readable.
	file := URLError(&fs.PathError{Op: "open", Path: "dist/cosign.key", Err: fs.ErrNotExist}, "dist/cosign.key")
	if file.Error() != "open dist/cosign.key: file does not exist" {
		t.Errorf("URLError(file) = %q, want the path kept", file)
	}
	if URLError(nil, "x") != nil {
		t.Error("URLError(nil) != nil")
	}
}
