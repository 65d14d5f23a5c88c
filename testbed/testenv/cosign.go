package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// CosignVersion is the cosign CLI tests verify with by default: the version
// of the library in go.mod.
const CosignVersion = "v2.6.5"

// CosignCLI returns the real cosign CLI at version, built from the Go module
// proxy the first time and cached under ~/.cache/agent-images (two to three
// minutes cold on two cores). Tests use it as the verifier that is not our
// code.
func CosignCLI(t testing.TB, version string) string {
	t.Helper()
	Require(t, "go")
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(home, ".cache", "agent-images", "cosign-"+version)
	bin := filepath.Join(dir, "cosign")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	t.Logf("building cosign %s into %s", version, dir)
	start := time.Now()
	major, _, _ := strings.Cut(version, ".")
	cmd := exec.Command("go", "install", "github.com/sigstore/cosign/"+major+"/cmd/cosign@"+version)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install cosign@%s: %v\n%s", version, err, out)
	}
	t.Logf("built cosign in %v", time.Since(start).Round(time.Second))
	return bin
}

// Cosign runs the cosign CLI with args, with a private HOME and TUF root so
// that its caches stay out of the user's, and returns its combined output.
func Cosign(t testing.TB, bin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "TUF_ROOT="+t.TempDir())
	out, err := cmd.CombinedOutput()
	return string(out), err
}
