package sign

import (
	"encoding/hex"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// TestNARHashesOfABuiltImage builds an agent image with Nix (dockerTools,
// as a release does) and checks that every store path the SBOM lists has
// the narHash Nix registered for it when it built the path, as nix-store
// reports it: the closure is in the store when a build signs. scripts/test.sh builds every image
// before the Go tests, so this one finds it built.
func TestNARHashesOfABuiltImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an image with Nix: skipped with -short")
	}
	testenv.Require(t, "nix", "nix-store")
	testenv.Setenv(t)
	ctx := t.Context()
	f := flake.Flake{Ref: testenv.RepoRoot(t), Overrides: testenv.StandinOverrides(t)}
	all, err := flake.Load(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	targets, err := flake.Select(all, []string{"pi"}, []flake.System{flake.X86_64Linux})
	if err != nil {
		t.Fatal(err)
	}
	b, err := flake.NewBuilder(flake.WithWorkDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	img, err := b.Build(ctx, targets[0])
	if err != nil {
		t.Fatalf("building pi: %v", err)
	}
	paths, err := storePaths(ctx, img.Image, flake.Run)
	if err != nil {
		t.Fatalf("storePaths = %v", err)
	}
	if len(paths) < 5 {
		t.Fatalf("storePaths = %d paths, want the image's closure", len(paths))
	}
	args := []string{"--query", "--hash"}
	for _, sp := range paths {
		args = append(args, sp.Path)
	}
	out, err := exec.CommandContext(ctx, "nix-store", args...).Output()
	if err != nil {
		t.Fatalf("nix-store --query --hash: %v", err)
	}
	registered := strings.Fields(string(out))
	if len(registered) != len(paths) {
		t.Fatalf("nix-store printed %d hashes for %d paths", len(registered), len(paths))
	}
	for i, sp := range paths {
		want, err := nixBase32Hex(strings.TrimPrefix(registered[i], "sha256:"))
		if err != nil {
			t.Fatalf("%s: nix-store --query --hash = %q: %v", sp.Path, registered[i], err)
		}
		if sp.NarHash != want {
			t.Errorf("NAR hash of %s = %q, want %q (Nix's narHash %s)", sp.Path, sp.NarHash, want, registered[i])
		}
	}
	t.Logf("%d store paths, each with Nix's narHash", len(paths))
}

// nixBase32Hex decodes a hash in Nix's base32 (its own alphabet, least
// significant digit last) to hex.
func nixBase32Hex(s string) (string, error) {
	const alphabet = "0123456789abcdfghijklmnpqrsvwxyz"
	out := make([]byte, len(s)*5/8)
	for n := 0; n < len(s); n++ {
		digit := strings.IndexByte(alphabet, s[len(s)-1-n])
		if digit < 0 {
			return "", fmt.Errorf("%q is not in Nix's base32", s)
		}
		b, j := n*5, n*5/8
		out[j] |= byte(digit << (b % 8))
		if j+1 < len(out) {
			out[j+1] |= byte(digit >> (8 - b%8))
		}
	}
	return hex.EncodeToString(out), nil
}
