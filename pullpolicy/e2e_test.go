package pullpolicy

import (
	"context"
	"fmt"
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

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/sign"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// pushIndex pushes a one-platform (linux/amd64) index to repo:latest, its
// image by digest, and returns the record of the image and the index, as
// the pipeline hands them to a Signer.
func pushIndex(t *testing.T, ctx context.Context, repo name.Repository) (*record.Image, name.Digest) {
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
	agent := repo.RepositoryStr()[strings.LastIndexByte(repo.RepositoryStr(), '/')+1:]
	rec := &record.Image{Agent: agent, System: string(flake.X86_64Linux), Platform: v1.Platform{OS: "linux", Architecture: "amd64"}, Image: img}
	if rec.Digest, err = img.Digest(); err != nil {
		t.Fatal(err)
	}
	rec.Ref = repo.Digest(rec.Digest.String())
	if err := remote.Write(rec.Ref, img, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	p := rec.Platform
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	if err := remote.WriteIndex(repo.Tag("latest"), idx, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	id, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return rec, repo.Digest(id.String())
}

// signWith signs the image and then the index as release --key does,
// through sign's Signer, with a fresh key pair written into dir, and
// returns the public key file.
func signWith(t *testing.T, ctx context.Context, dir, prefix string, img *record.Image, index name.Digest) string {
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
	s, err := sign.New(ctx, sign.Config{Key: priv})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SignImage(ctx, img.Ref, img, flake.Image{Attr: img.Agent, Name: img.Agent, Version: "1.0"}); err != nil {
		t.Fatalf("SignImage(%s) = %v", img.Ref, err)
	}
	if _, err := s.SignIndex(ctx, index, []name.Digest{img.Ref}); err != nil {
		t.Fatalf("SignIndex(%s) = %v", index, err)
	}
	return pub
}

// TestPolicyEnforced: the files release policy writes for a key make
// containers/image, the library Podman, Buildah, Skopeo and CRI-O verify
// with (the policy verifier, built with the upstream release), accept the
// image the release key signed and refuse an unsigned one and one signed by
// another key, from Debian's registry. Debian trixie's skopeo 1.18
// (system-wide style: explicit paths) does the same; a real user's rootless
// podman (bookworm's, files in ~/.config/containers) refuses the same two,
// and the signed one too, since bookworm builds it without sigstore
// verification.
func TestPolicyEnforced(t *testing.T) {
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
	piImage, piIndex := pushIndex(t, ctx, repo("pi"))
	releasePub := signWith(t, ctx, dir, "release", piImage, piIndex)
	pushIndex(t, ctx, repo("codex"))
	otherImage, otherIndex := pushIndex(t, ctx, repo("opencode"))
	signWith(t, ctx, dir, "other", otherImage, otherIndex)

	pem, err := os.ReadFile(releasePub)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := PublicKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	files, err := Generate(prefix, signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "policy")
	policy, reg, err := files.Write(out)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		repo    string
		wantErr string // "" accepted
		// verifierErr is containers/image's own reason, where it differs
		// from what Debian's build says.
		verifierErr string
	}{
		{repo: "pi"},
		{repo: "codex", wantErr: "no signature exists"},
		{repo: "opencode", wantErr: "Source image rejected", verifierErr: "cryptographic signature verification failed"},
	}

	t.Run("containers/image "+testenv.ContainersImageVersion, func(t *testing.T) {
		for _, tc := range cases {
			ref := prefix + "/" + tc.repo + ":latest"
			verdict, out := testenv.VerifyPull(t, policy, filepath.Dir(reg), ref)
			want := tc.verifierErr
			if want == "" {
				want = tc.wantErr
			}
			switch {
			case tc.wantErr == "" && verdict != testenv.Accepted:
				t.Errorf("pull of %s under the key policy: %s; want it accepted", ref, out)
			case tc.wantErr != "" && (verdict != testenv.Refused || !strings.Contains(out, want)):
				t.Errorf("pull of %s under the key policy: %s; want it refused for %q", ref, out, want)
			default:
				t.Log(out)
			}
		}
	})

	t.Run("skopeo", func(t *testing.T) {
		verifies := skopeoVerifiesSigstore(t)
		for _, tc := range cases {
			ref := "docker://" + prefix + "/" + tc.repo + ":latest"
			// The policy is checked on the source; the signatures
			// themselves cannot be written into an OCI layout.
			cmd := exec.CommandContext(ctx, "skopeo", "--policy", policy, "--registries.d", filepath.Dir(reg),
				"copy", "--remove-signatures", "--src-tls-verify=false", ref, "oci:"+filepath.Join(t.TempDir(), "out")+":x")
			b, err := cmd.CombinedOutput()
			if verifies && tc.wantErr == "" && err != nil {
				t.Errorf("skopeo copy %s failed, want it accepted by this skopeo, which verifies sigstore signatures: %v\n%s", ref, err, b)
				continue
			}
			checkPull(t, "skopeo copy "+ref, tc.wantErr, string(b), err)
		}
	})

	// The keyless policy: no image here is signed keyless (sign's tests sign
	// one through a local Fulcio and hold it to this policy), but an unsigned
	// one must be refused: by Debian's skopeo for not knowing "fulcio"; by
	// upstream containers/image, up to the newest release, for not knowing
	// "buildSignerURI", the only field that names a workflow identity (it
	// matches e-mail identities alone). Either way the policy fails closed.
	w, err := KeylessWorkflow(ctx, Workflow{Identity: ReleaseWorkflow, Issuer: GitHubIssuer,
		FulcioRoots: readFile(t, "fulcio-roots.pem"), RekorKeys: [][]byte{readFile(t, "rekor.pub")}})
	if err != nil {
		t.Fatal(err)
	}
	kf, err := Generate(prefix, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	kpolicy, kreg, err := kf.Write(filepath.Join(dir, "keyless"))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("skopeo keyless", func(t *testing.T) {
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
	t.Run("containers/image "+testenv.ContainersImageVersion+" keyless", func(t *testing.T) {
		ref := prefix + "/pi:latest"
		verdict, out := testenv.VerifyPull(t, kpolicy, filepath.Dir(kreg), ref)
		// When a release knows buildSignerURI, pin it here, and this turns
		// into a refusal for want of a signature by the workflow.
		if want := `Unknown key "buildSignerURI"`; verdict != testenv.InvalidPolicy || !strings.Contains(out, want) {
			t.Errorf("pull of %s under the keyless policy: %s; want the policy refused as invalid (%s)", ref, out, want)
		} else {
			t.Log(out)
		}
		if !strings.Contains(KeylessCaveat, testenv.ContainersImageVersion) {
			t.Errorf("KeylessCaveat names another containers/image than the one checked here (%s): %s", testenv.ContainersImageVersion, KeylessCaveat)
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

// skopeoVerifiesSigstore reports whether the skopeo on PATH is a release
// whose Debian build verifies sigstore signatures: trixie's 1.18 does,
// bookworm's 1.9 was built without. The test bed puts trixie's first; under
// AGENT_IMAGES_REQUIRE_E2E an older one is an error, not a lesser test.
func skopeoVerifiesSigstore(t *testing.T) bool {
	t.Helper()
	out, err := exec.Command("skopeo", "--version").Output()
	if err != nil {
		t.Fatalf("skopeo --version: %v", err)
	}
	var major, minor int
	if _, err := fmt.Sscanf(strings.TrimPrefix(strings.TrimSpace(string(out)), "skopeo version "), "%d.%d", &major, &minor); err != nil {
		t.Fatalf("skopeo --version printed %q", out)
	}
	verifies := major > 1 || major == 1 && minor >= 18
	if !verifies && testenv.Strict() {
		t.Fatalf("skopeo %d.%d cannot verify sigstore signatures: source scripts/env.sh for Debian trixie's", major, minor)
	}
	return verifies
}

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
