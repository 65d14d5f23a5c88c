package main

import (
	"strings"
	"testing"
)

// TestVerifyPinsTheSigner: release verify takes one exact identity and
// issuer, refuses cosign's pattern flags by name, and says what to pass,
// all before it reaches the registry.
func TestVerifyPinsTheSigner(t *testing.T) {
	// Not a workflow: no running workflow to take the identity from.
	t.Setenv("GITHUB_REPOSITORY", "")
	t.Setenv("GITHUB_WORKFLOW_REF", "")
	base := []string{"verify", "--agent", "pi", "--registry", "127.0.0.1:1/agent-images", "--insecure"}
	identity := "https://github.com/o/agent-images/.github/workflows/release.yml@refs/heads/main"
	issuer := "https://token.actions.githubusercontent.com"
	tests := []struct {
		name string
		args []string
		want []string // substrings of the error
	}{
		{"identity pattern", []string{"--certificate-identity-regexp", ".*", "--certificate-oidc-issuer", issuer},
			[]string{"--certificate-identity-regexp", "accepts no pattern", "--certificate-identity with"}},
		{"issuer pattern", []string{"--certificate-identity", identity, "--certificate-oidc-issuer-regexp", ".*"},
			[]string{"--certificate-oidc-issuer-regexp", "accepts no pattern"}},
		{"no issuer", []string{"--certificate-identity", identity},
			[]string{"pins the issuer", "--certificate-oidc-issuer (https://token.actions.githubusercontent.com"}},
		{"no identity", []string{"--certificate-oidc-issuer", issuer},
			[]string{"pins the signer", "--certificate-identity (the signing workflow"}},
		{"nobody", nil, []string{"say whose signatures count", "--key cosign.pub"}},
		{"workflow without repository", []string{"--workflow", "agent-images.yml"}, []string{"which repository's", "--repository OWNER/REPO"}},
		{"workflow and key", []string{"--repository", "acme/x", "--workflow", "agent-images.yml", "--key", "cosign.pub"}, []string{"not both"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := run(t, append(base, tt.args...)...)
			if err == nil {
				t.Fatalf("release %s = nil, want an error", strings.Join(append(base, tt.args...), " "))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("release %s = %v, want it to say %q", strings.Join(tt.args, " "), err, w)
				}
			}
			if strings.Contains(err.Error(), "resolving") {
				t.Errorf("release %s reached the registry (%v), want a refusal first", strings.Join(tt.args, " "), err)
			}
		})
	}
}
