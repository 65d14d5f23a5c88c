package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ContainersImageVersion is the containers/image release PolicyVerifier is
// built with: the newest the module proxy serves, the library upstream
// Podman, Buildah, Skopeo and CRI-O verify pulls with.
const ContainersImageVersion = "v5.42.1"

// PolicyVerifier returns a program that asks containers/image whether a
// trust policy admits an image, as podman pull does (its source is
// testdata/policyverifier/main.go; it prints "accepted: …", "refused: …" or
// "invalid policy: …"). Debian's Podman and Skopeo are built without
// sigstore verification, so this is how tests see a signed image accepted.
//
// It is built from a throwaway module in a temporary directory, so that
// containers/image stays out of go.mod, without cgo (openpgp instead of
// gpgme, no btrfs or devicemapper), and cached under ~/.cache/agent-images
// by version and source (about a minute and a half cold on two cores).
func PolicyVerifier(t testing.TB) string {
	t.Helper()
	Require(t, "go")
	src, err := os.ReadFile(filepath.Join(RepoRoot(t), "testbed", "testenv", "testdata", "policyverifier", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(src)
	dir := filepath.Join(home, ".cache", "agent-images", "policyverifier-"+ContainersImageVersion+"-"+hex.EncodeToString(sum[:6]))
	bin := filepath.Join(dir, "policyverifier")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Test packages run in parallel: the first builds, the others wait for
	// it rather than build the same thing on the same two cores.
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	t.Logf("building the policy verifier with go.podman.io/image/v5 %s into %s", ContainersImageVersion, dir)
	start := time.Now()
	mod := t.TempDir()
	goMod := "module policyverifier\n\ngo 1.26\n\nrequire go.podman.io/image/v5 " + ContainersImageVersion + "\n"
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte(goMod), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mod, "main.go"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	// Built beside the final name and renamed, so that a build cut short
	// never leaves a half-written program in the cache.
	tmp := bin + ".tmp"
	for _, args := range [][]string{
		{"mod", "tidy"},
		{"build", "-trimpath", "-tags", "containers_image_openpgp exclude_graphdriver_btrfs exclude_graphdriver_devicemapper", "-o", tmp, "."},
	} {
		cmd := exec.Command("go", args...)
		cmd.Dir = mod
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s (policy verifier): %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	t.Logf("built the policy verifier in %v", time.Since(start).Round(time.Second))
	return bin
}

// Verdict is what containers/image decided about a pull.
type Verdict string

const (
	Accepted      Verdict = "accepted"
	Refused       Verdict = "refused"
	InvalidPolicy Verdict = "invalid policy"
)

// VerifyPull has the policy verifier decide whether policy, with the
// signatures registriesD points at, admits image (HOST/REPO:TAG on a
// plain-HTTP registry), and returns the verdict and the verifier's line
// (with the reason). Anything else the verifier says fails the test.
func VerifyPull(t testing.TB, policy, registriesD, image string) (Verdict, string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), PolicyVerifier(t), "--policy", policy, "--registries.d", registriesD, "--insecure", "//"+image)
	b, err := cmd.CombinedOutput()
	out := strings.TrimSpace(string(b))
	for _, v := range []Verdict{Accepted, Refused, InvalidPolicy} {
		if strings.HasPrefix(out, string(v)+": ") && !strings.Contains(out, "\n") {
			if (v == Accepted) != (err == nil) {
				break
			}
			return v, out
		}
	}
	t.Fatalf("policy verifier on %s: %v\n%s", image, err, out)
	return "", ""
}
