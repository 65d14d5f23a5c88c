package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPolicy(t *testing.T) {
	// Not a workflow: the signer comes from the flags alone.
	t.Setenv("GITHUB_REPOSITORY", "")
	t.Setenv("GITHUB_WORKFLOW_REF", "")
	testdata := filepath.Join("..", "..", "pullpolicy", "testdata")
	out := filepath.Join(t.TempDir(), "policy")
	got, err := run(t, "policy", "--registry", "127.0.0.1:5000/agent-images", "--key", filepath.Join(testdata, "cosign.pub"), "--out", out)
	if err != nil {
		t.Fatalf("policy --key = %v", err)
	}
	for _, want := range []string{
		filepath.Join(out, "policy.json") + " -> /etc/containers/policy.json",
		filepath.Join(out, "registries.d", "127.0.0.1-5000-agent-images.yaml") + " -> ~/.config/containers/registries.d/127.0.0.1-5000-agent-images.yaml",
		"only when signed by the holder of the given public key",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("policy output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Before you install") {
		t.Errorf("key policy output carries the keyless caveat:\n%s", got)
	}
	if b, err := os.ReadFile(filepath.Join(out, "policy.json")); err != nil || !strings.Contains(string(b), `"sigstoreSigned"`) {
		t.Errorf("policy.json = %s, %v; want a sigstoreSigned requirement", b, err)
	}

	offline := []string{"--fulcio-roots", filepath.Join(testdata, "fulcio-roots.pem"), "--rekor-key", filepath.Join(testdata, "rekor.pub")}
	got, err = run(t, append([]string{"policy", "--repository", "nothingnesses/agent-images", "--workflow", "release.yml", "--out", filepath.Join(t.TempDir(), "k")}, offline...)...)
	if err != nil {
		t.Fatalf("policy (keyless) = %v", err)
	}
	if !strings.Contains(got, "under ghcr.io/nothingnesses/agent-images only when signed by workflow https://github.com/nothingnesses/agent-images/.github/workflows/release.yml@refs/heads/main") {
		t.Errorf("keyless policy output does not name this repository's registry and release workflow:\n%s", got)
	}
	if !strings.Contains(got, "Before you install them: no released Podman") {
		t.Errorf("keyless policy output does not warn that no released Podman verifies it:\n%s", got)
	}

	bad := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"policy"}, "--out"},
		{[]string{"policy", "--out", out, "--registry", "127.0.0.1:5000/agent-images", "--key", filepath.Join(testdata, "cosign.pub")}, "exists"},
		{[]string{"policy", "--out", t.TempDir(), "--repository", "acme/x", "--key", filepath.Join(testdata, "cosign.pub"), "--certificate-identity", "x"}, "two different signers"},
		{[]string{"policy", "--out", t.TempDir(), "--repository", "acme/x", "--key", filepath.Join(testdata, "cosign.pub"), "--workflow", "x.yml"}, "two different signers"},
		{[]string{"policy", "--out", t.TempDir(), "--repository", "acme/x"}, "whose signatures count"},
		{[]string{"policy", "--out", t.TempDir(), "--repository", "acme/x", "--workflow", "x.yml@main"}, "full ref"},
		{[]string{"policy", "--out", t.TempDir(), "--repository", "acme/x", "--workflow", "x.yml", "--fulcio-roots", filepath.Join(testdata, "fulcio-roots.pem")}, "together"},
		{[]string{"policy", "--out", t.TempDir(), "--key", filepath.Join(testdata, "rekor.pub"), "--registry", "agent-images"}, "registry host"},
		{[]string{"policy", "--out", t.TempDir(), "--repository", "acme/x", "--key", filepath.Join(testdata, "fulcio-roots.pem")}, "--key"},
	}
	for _, tc := range bad {
		if _, err := run(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("release %s = %v, want an error containing %q", strings.Join(tc.args, " "), err, tc.wantErr)
		}
	}
}
