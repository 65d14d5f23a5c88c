package sign

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/nothingnesses/agent-images/internal/testenv"
)

// cosignVersions are the cosign CLIs the independent-verifier test builds:
// the same version as the library in go.mod, and the v3 line users get from
// package managers today. Both must read the classic .sig/.att tags.
var cosignVersions = []string{"v2.6.5", "v3.1.3"}

// cosignCLI returns the real cosign CLI at version, built from the Go module
// proxy the first time and cached under ~/.cache/agent-images (two to three
// minutes cold on two cores).
func cosignCLI(t *testing.T, cosignVersion string) string {
	t.Helper()
	testenv.Require(t, "go")
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(home, ".cache", "agent-images", "cosign-"+cosignVersion)
	bin := filepath.Join(dir, "cosign")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	t.Logf("building cosign %s into %s", cosignVersion, dir)
	start := time.Now()
	major, _, _ := strings.Cut(cosignVersion, ".")
	cmd := exec.CommandContext(t.Context(), "go", "install", "github.com/sigstore/cosign/"+major+"/cmd/cosign@"+cosignVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install cosign@%s: %v\n%s", cosignVersion, err, out)
	}
	t.Logf("built cosign in %v", time.Since(start).Round(time.Second))
	return bin
}

// runCosign runs a printed cosign command line with the real CLI.
func runCosign(t *testing.T, bin, line string) (string, error) {
	t.Helper()
	args := strings.Fields(line)
	if len(args) < 2 || args[0] != "cosign" {
		t.Fatalf("not a cosign command: %q", line)
	}
	cmd := exec.CommandContext(t.Context(), bin, args[1:]...)
	// A private HOME keeps the CLI's TUF cache out of the user's.
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "TUF_ROOT="+t.TempDir())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestCosignCLIVerifies has the real cosign CLI, not our Verify, check what
// Sign wrote: the index and per-arch signatures and both attestations, using
// the very commands Sign and Verify print.
func TestCosignCLIVerifies(t *testing.T) {
	bins := map[string]string{}
	for _, v := range cosignVersions {
		bins[v] = cosignCLI(t, v)
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
