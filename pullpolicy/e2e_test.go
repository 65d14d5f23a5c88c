package pullpolicy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign"

	"github.com/nothingnesses/agent-images/internal/testenv"
)

// pushIndex pushes a one-platform (linux/amd64) index to repo:latest and
// returns it by digest.
func pushIndex(t *testing.T, ctx context.Context, repo name.Repository) name.Digest {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(repo.Digest(d.String()), img, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	p := v1.Platform{OS: "linux", Architecture: "amd64"}
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	if err := remote.WriteIndex(repo.Tag("latest"), idx, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	id, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return repo.Digest(id.String())
}

// signWith signs the index and its image with a fresh key pair written
// into dir, with the real cosign CLI (the same .sig tags a release with
// --key writes), and returns the public key file.
func signWith(t *testing.T, dir, prefix string, index name.Digest) string {
	t.Helper()
	keys, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte("pw"), nil })
	if err != nil {
		t.Fatal(err)
	}
	priv, pub := filepath.Join(dir, prefix+".key"), filepath.Join(dir, prefix+".pub")
	if err := os.WriteFile(priv, keys.PrivateBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, keys.PublicBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("COSIGN_PASSWORD", "pw")
	bin := testenv.CosignCLI(t, testenv.CosignVersion)
	out, err := testenv.Cosign(t, bin, "sign", "--key", priv, "--tlog-upload=false", "--allow-insecure-registry",
		"--recursive", "--yes", index.String())
	if err != nil {
		t.Fatalf("cosign sign %s: %v\n%s", index, err, out)
	}
	return pub
}

// TestPolicyEnforcedByPodmanAndSkopeo: the files release policy writes for a
// key make the real skopeo (with the system-wide style of explicit paths)
// and a real user's rootless podman (with the files in ~/.config/containers)
// pull an image the release signed, and refuse an unsigned one and one
// signed by another key, from Debian's registry.
func TestPolicyEnforcedByPodmanAndSkopeo(t *testing.T) {
	testenv.Require(t, "skopeo", "podman")
	ctx := t.Context()
	addr := testenv.StartRegistry(t)
	prefix := addr + "/agent-images"
	dir := t.TempDir()
	repo := func(n string) name.Repository {
		r, err := name.NewRepository(prefix+"/"+n, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	releasePub := signWith(t, dir, "release", pushIndex(t, ctx, repo("pi")))
	pushIndex(t, ctx, repo("codex"))
	signWith(t, dir, "other", pushIndex(t, ctx, repo("opencode")))

	pem, err := os.ReadFile(releasePub)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := PublicKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	files, err := Generate(prefix, signer)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "policy")
	policy, reg, err := files.Write(out)
	if err != nil {
		t.Fatal(err)
	}

	// The signed image's signature is good for the key the policy names:
	// what the policy demands is there to be found.
	piRef := prefix + "/pi:latest"
	if out, err := testenv.Cosign(t, testenv.CosignCLI(t, testenv.CosignVersion), "verify", "--key", releasePub,
		"--insecure-ignore-tlog=true", "--allow-insecure-registry", piRef); err != nil {
		t.Fatalf("cosign verify %s: %v\n%s; want the release key's signature to verify", piRef, err, out)
	}

	cases := []struct {
		repo    string
		wantErr string // "" accepted
	}{
		{repo: "pi"},
		{repo: "codex", wantErr: "no signature exists"},
		{repo: "opencode", wantErr: "Source image rejected"},
	}

	t.Run("skopeo", func(t *testing.T) {
		for _, tc := range cases {
			ref := "docker://" + prefix + "/" + tc.repo + ":latest"
			cmd := exec.CommandContext(ctx, "skopeo", "--policy", policy, "--registries.d", filepath.Dir(reg),
				"copy", "--src-tls-verify=false", ref, "oci:"+filepath.Join(t.TempDir(), "out")+":x")
			b, err := cmd.CombinedOutput()
			checkPull(t, "skopeo copy "+ref, tc.wantErr, string(b), err)
		}
	})

	// The keyless policy: no image here is signed keyless, but an unsigned
	// one must be refused, by a containers/image that knows the policy's
	// fields, or for not knowing them (Debian's rejects "fulcio").
	t.Run("skopeo keyless", func(t *testing.T) {
		w, err := KeylessWorkflow(ctx, Workflow{Identity: ReleaseWorkflow, Issuer: GitHubIssuer,
			FulcioRoots: readFile(t, "fulcio-roots.pem"), RekorKeys: [][]byte{readFile(t, "rekor.pub")}})
		if err != nil {
			t.Fatal(err)
		}
		kf, err := Generate(prefix, w)
		if err != nil {
			t.Fatal(err)
		}
		kpolicy, kreg, err := kf.Write(filepath.Join(dir, "keyless"))
		if err != nil {
			t.Fatal(err)
		}
		ref := "docker://" + prefix + "/codex:latest"
		b, err := exec.CommandContext(ctx, "skopeo", "--policy", kpolicy, "--registries.d", filepath.Dir(kreg),
			"copy", "--src-tls-verify=false", ref, "oci:"+filepath.Join(t.TempDir(), "out")+":x").CombinedOutput()
		out := string(b)
		switch {
		case err == nil:
			t.Errorf("skopeo copy %s under the keyless policy succeeded, want it refused\n%s", ref, out)
		case strings.Contains(out, "Unknown key"):
			t.Logf("this skopeo's containers/image does not know the keyless policy's fields: %s", lastLine(out))
		case !strings.Contains(out, "no signature exists"):
			t.Errorf("skopeo copy %s under the keyless policy failed for another reason:\n%s", ref, out)
		}
	})

	t.Run("rootless podman", func(t *testing.T) {
		u := testenv.RootlessUser(t, 1001)
		conf := filepath.Join(u.Home, ".config", "containers")
		for _, d := range []string{filepath.Join(u.Home, ".config"), conf, filepath.Join(conf, "registries.d")} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
			u.Chown(t, d)
		}
		for from, to := range map[string]string{policy: filepath.Join(conf, "policy.json"), reg: filepath.Join(conf, "registries.d", files.RegistriesDName)} {
			b, err := os.ReadFile(from)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(to, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range cases {
			ref := prefix + "/" + tc.repo + ":latest"
			b, err := u.Command(t, u.Home, "podman", "pull", "--tls-verify=false", ref).CombinedOutput()
			checkPull(t, "podman pull "+ref, tc.wantErr, string(b), err)
		}
	})
}

// debianNoSigstore is how Debian's containers/image (Debian 12: Podman 4.3,
// Skopeo 1.9) refuses every sigstore signature: it is built without
// sigstore verification.
const debianNoSigstore = "Debian-local change: sigstore disabled"

func checkPull(t *testing.T, what, wantErr, out string, err error) {
	t.Helper()
	switch {
	case wantErr == "" && err != nil && strings.Contains(out, debianNoSigstore):
		// Refused for that reason alone, after the policy asked for the
		// release key's signature and the registries.d entry found it.
		t.Logf("%s: refused by this build's containers/image, which cannot verify any sigstore signature (%q); the policy asked for the right one", what, debianNoSigstore)
	case wantErr == "" && err != nil:
		t.Errorf("%s failed, want it accepted: %v\n%s", what, err, out)
	case wantErr != "" && err == nil:
		t.Errorf("%s succeeded, want it refused (%s)\n%s", what, wantErr, out)
	case wantErr != "" && !strings.Contains(out, wantErr):
		t.Errorf("%s failed without saying %q:\n%s", what, wantErr, out)
	default:
		t.Logf("%s: %s", what, lastLine(out))
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
