package flake

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeNix puts a nix on PATH that runs script (bash, with the arguments in
// "$@").
func fakeNix(t *testing.T, script string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nix"), []byte("#!/usr/bin/env bash\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
}

// TestRunHidesSecretsOfReferences: Nix quotes the references it was given
// (and pieces of them) in its errors; the error Run returns shows their
// public form only.
func TestRunHidesSecretsOfReferences(t *testing.T) {
	fakeNix(t, `for a in "$@"; do echo "error: cannot fetch '$a'" >&2; done
echo "fatal: Authentication failed for 'https://u:TOKEN-1234@git.example.com/r/'" >&2
echo "error: getting status of '/tmp/tok=ghp_FAKE/x/flake.nix'" >&2
exit 1`)
	f := Flake{Ref: "git+https://me:FLAKE-TOKEN@git.example.com/flake", Overrides: map[string]string{
		"llm-agents": "git+https://u:TOKEN-1234@git.example.com/r?ref=main&token=QUERY-TOKEN",
		"nixpkgs":    "path:/tmp/tok=ghp_FAKE/x",
	}}
	_, err := Run(context.Background(), append([]string{"build", f.Installable("packages.x86_64-linux.pi")}, f.OverrideArgs()...)...)
	if err == nil {
		t.Fatal("Run() = nil, want the fake nix's failure")
	}
	msg := err.(*Error).Stderr
	for _, secret := range []string{"TOKEN-1234", "QUERY-TOKEN", "ghp_FAKE", "FLAKE-TOKEN", "u:", "me:"} {
		if strings.Contains(msg, secret) {
			t.Errorf("Run() error holds %q:\n%s", secret, msg)
		}
	}
	for _, kept := range []string{"git+https://git.example.com/r", "path:(local)", "git+https://git.example.com/flake#packages.x86_64-linux.pi", "Authentication failed"} {
		if !strings.Contains(msg, kept) {
			t.Errorf("Run() error lacks %q:\n%s", kept, msg)
		}
	}
}

func TestMetadata(t *testing.T) {
	fakeNix(t, `[ "$1 $2 $3 $4" = "flake metadata --json --no-write-lock-file" ] || exit 2
echo '{"description":"x","revision":"0123456789abcdef0123456789abcdef01234567","lastModified":1777958046,"locks":{"nodes":{"root":{"inputs":{"nixpkgs":"nixpkgs"}},"nixpkgs":{"locked":{"narHash":"sha256-x","type":"path"}}},"root":"root","version":7}}'`)
	meta, err := Flake{Ref: ".", Overrides: map[string]string{"nixpkgs": "path:/x"}}.Metadata(context.Background(), Run)
	if err != nil || len(meta.Inputs) != 1 || meta.Inputs["nixpkgs"].NarHash != "sha256-x" || meta.LastModified.Unix() != 1777958046 ||
		meta.Revision != "0123456789abcdef0123456789abcdef01234567" {
		t.Errorf("Metadata() = %+v, %v, want the commit, the locked nixpkgs and the time", meta, err)
	}
}
