package sign

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/nothingnesses/agent-images/internal/testenv"
)

// cosignVersions are the cosign CLIs the independent-verifier test builds:
// the same version as the library in go.mod, and the v3 line users get from
// package managers today. Both must read the classic .sig/.att tags.
var cosignVersions = []string{"v2.6.5", "v3.1.3"}

// runCosign runs a printed cosign command line with the real CLI.
func runCosign(t *testing.T, bin, line string) (string, error) {
	t.Helper()
	args := strings.Fields(line)
	if len(args) < 2 || args[0] != "cosign" {
		t.Fatalf("not a cosign command: %q", line)
	}
	return testenv.Cosign(t, bin, args[1:]...)
}

// TestCosignCLIVerifies has the real cosign CLI, not our Verify, check what
// Sign wrote: the index and per-arch signatures and both attestations, using
// the very commands Sign and Verify print.
func TestCosignCLIVerifies(t *testing.T) {
	bins := map[string]string{}
	for _, v := range cosignVersions {
		bins[v] = testenv.CosignCLI(t, v)
	}
	addr := startRegistry(t)
	ctx := t.Context()
	dir := t.TempDir()
	key, pub := writeKeyPair(t, dir, "cosign", "pw")
	_, otherPub := writeKeyPair(t, dir, "other", "pw")
	t.Setenv("COSIGN_PASSWORD", "pw")
	s, err := New(ctx, WithKey(key))
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := name.NewRepository(addr+"/agent-images/pi", name.Insecure)
	req := pushRelease(t, ctx, repo, "good")
	res, err := signRelease(ctx, s, req)
	if err != nil {
		t.Fatalf("Sign = %v", err)
	}
	if want := "--key " + pub; !strings.Contains(res.VerifyCommand, want) {
		t.Fatalf("VerifyCommand = %q, want it to name the public key (%s)", res.VerifyCommand, want)
	}
	ignoreTlog, insecure := true, true
	args := []string{"--key", pub}
	commands := []string{res.VerifyCommand, res.VerifyAttestationCommand}
	for _, p := range req.Images {
		commands = append(commands,
			CosignCommand("verify", p.Ref, args, ignoreTlog, insecure, ""),
			CosignCommand("verify-attestation", p.Ref, args, ignoreTlog, insecure, "cyclonedx"),
			CosignCommand("verify-attestation", p.Ref, args, ignoreTlog, insecure, "slsaprovenance1"),
		)
	}
	for _, v := range cosignVersions {
		t.Run("cosign "+v, func(t *testing.T) {
			for _, line := range commands {
				out, err := runCosign(t, bins[v], line)
				if err != nil {
					t.Errorf("%s: %v\n%s", line, err, out)
					continue
				}
				t.Logf("%s: ok", line)
			}
			// And the CLI is not vacuous: another key fails.
			wrong := CosignCommand("verify", req.Index, []string{"--key", otherPub}, ignoreTlog, insecure, "")
			if out, err := runCosign(t, bins[v], wrong); err == nil {
				t.Errorf("%s succeeded, want a failure\n%s", wrong, out)
			}
		})
	}
}
