package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign"

	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// outsideActions makes the test independent of the CI it runs in: no
// Actions environment, so no keyless identity and no default registry.
func outsideActions(t *testing.T) {
	for _, k := range []string{"GITHUB_ACTIONS", "ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "GITHUB_SHA", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"} {
		t.Setenv(k, "")
	}
}

// catalog lists the repositories of a registry.
func catalog(t *testing.T, host string) []string {
	t.Helper()
	reg, err := name.NewRegistry(host, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	repos, err := remote.Catalog(t.Context(), reg)
	if err != nil {
		t.Fatalf("listing %s: %v", host, err)
	}
	return repos
}

// TestFlagsFailBeforeBuilding: a flag that cannot work fails before the
// flake is built and before anything is pushed. Each used to be found only
// after building (and --output after publishing, --commit after moving
// latest); the reserved tag spaces were not refused at all.
func TestFlagsFailBeforeBuilding(t *testing.T) {
	testenv.Require(t, "nix", "docker-registry")
	testenv.Setenv(t)
	outsideActions(t)
	host := testenv.StartRegistry(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"commit", []string{"--commit", "a b c d e f g"}, `"a b c d e f g" is not a git commit id`},
		{"tag", []string{"--tag", "bad tag"}, `"bad tag" is not a valid tag`},
		{"cosign's tags", []string{"--tag", "sha256-" + strings.Repeat("ab", 32) + ".sig"}, "reserved tag space sha256-*"},
		{"staging tags", []string{"--tag", "staging-sha-0123456-linux-amd64"}, "reserved tag space staging-*"},
		{"runtime", []string{"--runtime", "bogus"}, `--runtime "bogus": want podman, docker or none`},
		{"output", []string{"--output", "/nonexistent/x.json"}, "--output /nonexistent/x.json: its directory /nonexistent does not exist"},
		{"registry port", []string{"--registry", "localhost:99999/x"}, `port "99999" is not a number from 1 to 65535`},
		{"registry credentials", []string{"--registry", "user:SECRET@" + host + "/x"}, "credentials (user:password@)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			work := filepath.Join(t.TempDir(), "work")
			args := append([]string{"--agent", "pi", "--push", "--registry", host + "/agent-images", "--insecure",
				"--sign=false", "--runtime", "none", "--work-dir", work, "--layout", filepath.Join(work, "oci")}, standinArgs(t)...)
			_, err := run(t, append(args, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("release %v = %v, want an error containing %q", tc.args, err, tc.want)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("the error repeats the password: %v", err)
			}
			if _, err := os.Stat(work); !os.IsNotExist(err) {
				t.Errorf("release %v built something (%s exists) before failing", tc.args, work)
			}
			if repos := catalog(t, host); len(repos) > 0 {
				t.Errorf("release %v pushed %v before failing", tc.args, repos)
			}
		})
	}
}

// TestMergeNeverPublishesUnsigned: merge used to publish unsigned when not
// given --push (and moved every tag); now it always pushes and signs, so
// without a signing identity it refuses before touching anything. build
// --dry-run --push used to push and tag; now it writes nothing.
func TestMergeNeverPublishesUnsigned(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pi: skipped with -short")
	}
	testenv.Require(t, "nix", "docker-registry")
	testenv.Setenv(t)
	outsideActions(t)
	host := testenv.StartRegistry(t)
	prefix := host + "/agent-images"
	dir := t.TempDir()
	const password = "cmd-test"
	kp, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte(password), nil })
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "cosign.key")
	if err := os.WriteFile(key, kp.PrivateBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("COSIGN_PASSWORD", password)
	common := append([]string{"--agent", "pi", "--registry", prefix, "--insecure", "--runtime", "none",
		"--commit", "0123456789abcdef0123456789abcdef01234567", "--work-dir", filepath.Join(dir, "work")}, standinArgs(t)...)

	if _, err := run(t, append([]string{"build", "--push", "--dry-run", "--key", key, "--output", filepath.Join(dir, "dry.json")}, common...)...); err != nil {
		t.Fatalf("release build --dry-run --push = %v", err)
	}
	if repos := catalog(t, host); len(repos) > 0 {
		t.Fatalf("release build --dry-run --push pushed %v", repos)
	}

	records := filepath.Join(dir, "records")
	if err := os.Mkdir(records, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, sys := range []string{"x86_64-linux", "aarch64-linux"} {
		out := filepath.Join(records, "build-pi-"+sys+".json")
		if _, err := run(t, append([]string{"build", "--push", "--system", sys, "--key", key, "--output", out}, common...)...); err != nil {
			t.Fatalf("release build --system %s = %v", sys, err)
		}
		if _, err := record.ReadBuilds(out); err != nil {
			t.Fatalf("release build --output: %v", err)
		}
	}
	repo, _ := name.NewRepository(prefix+"/pi", name.Insecure)
	for _, args := range [][]string{
		{"merge", "--from", records},
		{"merge", "--from", records, "--push"},
	} {
		_, err := run(t, append(args, common...)...)
		if err == nil || !strings.Contains(err.Error(), "no signing identity") {
			t.Errorf("release %v without a key = %v, want it refused for having no signing identity", args, err)
		}
		if _, err := remote.Head(repo.Tag("latest")); err == nil {
			t.Fatalf("release %v without a key moved latest", args)
		}
	}

	out := filepath.Join(dir, "release.json")
	if _, err := run(t, append([]string{"merge", "--from", records, "--key", key, "--output", out}, common...)...); err != nil {
		t.Fatalf("release merge --key = %v", err)
	}
	rep, err := record.ReadReport(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Agents) != 1 || rep.Agents[0].Signing == nil || rep.Agents[0].Signing.Mode != "key" {
		t.Fatalf("release.json = %+v, want pi signed with the key", rep.Agents)
	}
	if desc, err := remote.Head(repo.Tag("latest")); err != nil || desc.Digest != rep.Agents[0].Index {
		t.Errorf("latest = %v %v, want %s", desc, err, rep.Agents[0].Index)
	}
}
