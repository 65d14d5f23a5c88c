package sign

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/nothingnesses/agent-images/testbed/testenv"
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
// Sign wrote: the index and per-arch signatures and every attestation (both
// SBOM formats and the provenance), using the very commands Sign and Verify
// print.
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
	s, err := New(ctx, Config{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := name.NewRepository(addr+"/agent-images/pi", name.Insecure)
	req := pushRelease(t, ctx, repo, "good")
	res, err := signRelease(ctx, s, req)
	if err != nil {
		t.Fatalf("Sign = %v", err)
	}
	// Another agent released with CycloneDX alone.
	cdxSigner, err := New(ctx, Config{Key: key, SBOMFormats: []SBOMFormat{SBOMCycloneDX}})
	if err != nil {
		t.Fatal(err)
	}
	cdxRepo, _ := name.NewRepository(addr+"/agent-images/codex", name.Insecure)
	cdxOnly := pushRelease(t, ctx, cdxRepo, "cdx")
	if _, err := signRelease(ctx, cdxSigner, cdxOnly); err != nil {
		t.Fatalf("Sign(cyclonedx) = %v", err)
	}
	if want := "--key " + pub; !strings.Contains(res.VerifyCommand, want) {
		t.Fatalf("VerifyCommand = %q, want it to name the public key (%s)", res.VerifyCommand, want)
	}
	policy := Policy{Key: pub, IgnoreTlog: true} // the registry is plain HTTP: the commands allow it
	commands := []string{res.VerifyCommand, res.VerifyAttestationCommand}
	for _, p := range req.Images {
		commands = append(commands,
			policy.cosignCommand("verify", p.Ref, ""),
			policy.cosignCommand("verify-attestation", p.Ref, "cyclonedx"),
			policy.cosignCommand("verify-attestation", p.Ref, "spdxjson"),
			policy.cosignCommand("verify-attestation", p.Ref, "slsaprovenance1"),
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
			// --type selects our documents by their predicate types.
			for typ, read := range map[string]func(*testing.T, []byte){
				"cyclonedx": func(t *testing.T, b []byte) {
					if err := cycloneDXSchema(t).Validate(mustUnmarshalJSON(t, b)); err != nil {
						t.Errorf("the CycloneDX predicate cosign returned does not validate: %v", err)
					}
				},
				"spdxjson": func(t *testing.T, b []byte) { readSPDX(t, b) },
			} {
				line := policy.cosignCommand("verify-attestation", req.Images[0].Ref, typ)
				out, err := runCosign(t, bins[v], line)
				if err != nil {
					t.Fatalf("%s: %v\n%s", line, err, out)
				}
				read(t, cosignPredicate(t, out))
			}
			// And the CLI is not vacuous: another key fails.
			wrong := Policy{Key: otherPub, IgnoreTlog: true}.cosignCommand("verify", req.Index, "")
			if out, err := runCosign(t, bins[v], wrong); err == nil {
				t.Errorf("%s succeeded, want a failure\n%s", wrong, out)
			}
			// Nor is --type: a release without SPDX has no spdxjson attestation.
			for _, p := range cdxOnly.Images {
				spdxLine := policy.cosignCommand("verify-attestation", p.Ref, "spdxjson")
				if out, err := runCosign(t, bins[v], spdxLine); err == nil {
					t.Errorf("%s succeeded on a CycloneDX-only release, want a failure\n%s", spdxLine, out)
				}
				cdxLine := policy.cosignCommand("verify-attestation", p.Ref, "cyclonedx")
				if out, err := runCosign(t, bins[v], cdxLine); err != nil {
					t.Errorf("%s: %v\n%s", cdxLine, err, out)
				}
			}
		})
	}
}

// cosignPredicate is the predicate of the one attestation cosign
// verify-attestation printed (a DSSE envelope per line on stdout).
func cosignPredicate(t *testing.T, out string) []byte {
	t.Helper()
	var preds [][]byte
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var env struct{ Payload string }
		if err := json.Unmarshal([]byte(line), &env); err != nil {
			t.Fatalf("cosign printed %q: %v", line, err)
		}
		body, err := base64.StdEncoding.DecodeString(env.Payload)
		if err != nil {
			t.Fatal(err)
		}
		var st struct{ Predicate json.RawMessage }
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatal(err)
		}
		preds = append(preds, st.Predicate)
	}
	if len(preds) != 1 {
		t.Fatalf("cosign verify-attestation printed %d attestations, want the one of its --type:\n%s", len(preds), out)
	}
	return preds[0]
}

func mustUnmarshalJSON(t *testing.T, b []byte) any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return v
}
