package sign

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/nothingnesses/agent-images/pullpolicy"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// TestKeylessPullPolicy holds an image signed keyless, for the release
// workflow's identity through the local Fulcio, to the keyless trust policy
// release policy writes, as containers/image (the policy verifier, built
// with its newest release) decides a pull. It lives here because the local
// OIDC issuer and Fulcio do.
//
// What it shows, and why that is as far as this machine goes:
//   - The policy as written is invalid there: containers/image matches a
//     Fulcio certificate's e-mail only (fulcio.subjectEmail), and
//     fulcio.buildSignerURI, which names a workflow, is still a pull request
//     upstream. A policy that does not load refuses every pull.
//   - Everything else in it is what containers/image expects: with
//     buildSignerURI swapped for subjectEmail the policy loads, and the
//     signed image is refused for want of a Rekor SET (cosign's bundle
//     annotation). containers/image demands one of every Fulcio-signed
//     image, with no setting to waive it, and checks the certificate at
//     the SET's time; this machine has no Rekor to log the signature in.
func TestKeylessPullPolicy(t *testing.T) {
	addr := startRegistry(t)
	ctx := t.Context()
	issuer := startOIDCIssuer(t)
	fulcioURL, roots := startFulcio(t, issuer.srv.URL)
	inActions(t, issuer)
	s, err := New(ctx, Config{FulcioURL: fulcioURL, FulcioRoots: roots, TlogUpload: new(bool)})
	if err != nil {
		t.Fatal(err)
	}
	prefix := addr + "/agent-images"
	repo, _ := name.NewRepository(prefix+"/pi", name.Insecure)
	if _, err := signRelease(ctx, s, pushRelease(t, ctx, repo, "keyless")); err != nil {
		t.Fatalf("Sign = %v", err)
	}

	rekorKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rekorPEM, err := cryptoutils.MarshalPublicKeyToPEM(&rekorKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	// The local issuer is plain HTTP, which a policy refuses; the issuer is
	// put in below, where the policy is edited anyway.
	w, err := pullpolicy.KeylessWorkflow(ctx, pullpolicy.Workflow{Identity: testIdentity, Issuer: pullpolicy.GitHubIssuer,
		FulcioRoots: fulcioRootsPEM(t, fulcioURL), RekorKeys: [][]byte{rekorPEM}})
	if err != nil {
		t.Fatal(err)
	}
	files, err := pullpolicy.Generate(prefix, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	policy, reg, err := files.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	image := prefix + "/pi:latest"

	verdict, out := testenv.VerifyPull(t, policy, filepath.Dir(reg), image)
	if want := `Unknown key "buildSignerURI"`; verdict != testenv.InvalidPolicy || !strings.Contains(out, want) {
		t.Errorf("pull of %s under the keyless policy: %s; want the policy refused as invalid (%s) until a containers/image release knows it", image, out, want)
	} else {
		t.Log(out)
	}

	var doc map[string]any
	if err := json.Unmarshal(files.Policy, &doc); err != nil {
		t.Fatal(err)
	}
	req := doc["transports"].(map[string]any)["docker"].(map[string]any)[prefix].([]any)[0].(map[string]any)
	fulcio := req["fulcio"].(map[string]any)
	delete(fulcio, "buildSignerURI")
	fulcio["subjectEmail"] = "release@example.com"
	fulcio["oidcIssuer"] = issuer.srv.URL
	edited, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	editedPolicy := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(editedPolicy, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	verdict, out = testenv.VerifyPull(t, editedPolicy, filepath.Dir(reg), image)
	if want := "missing dev.sigstore.cosign/bundle annotation"; verdict != testenv.Refused || !strings.Contains(out, want) {
		t.Errorf("pull of %s under the keyless policy with subjectEmail: %s; want it refused for want of a Rekor SET (%s)", image, out, want)
	} else {
		t.Log(out)
	}
}

// fulcioRootsPEM is the root certificates of the Fulcio at url, read from
// its trust bundle, as release policy --fulcio-roots takes them.
func fulcioRootsPEM(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url + "/api/v2/trustBundle")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var bundle struct {
		Chains []struct {
			Certificates []string `json:"certificates"`
		} `json:"chains"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&bundle); err != nil {
		t.Fatalf("reading Fulcio's trust bundle: %v", err)
	}
	var roots []byte
	for _, c := range bundle.Chains {
		roots = append(roots, c.Certificates[len(c.Certificates)-1]...)
	}
	return roots
}
