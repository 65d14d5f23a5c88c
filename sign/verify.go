package sign

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	sigs "github.com/sigstore/cosign/v2/pkg/signature"
	sigpayload "github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/nothingnesses/agent-images/internal/transport"
)

// Policy says whose signatures count: one key, or one exact certificate
// identity and issuer. There are no patterns: a regexp identity (worst,
// `.*`) accepts a signature by anyone who can get a certificate.
type Policy struct {
	// Key is a public key file, env://VAR or KMS URI (key mode).
	Key string
	// Keyless: the certificate's exact subject (the signing workflow's URI
	// at its ref, or an email) and OIDC issuer.
	CertIdentity   string
	CertOIDCIssuer string
	// Roots and Intermediates are the CA of a private Fulcio; nil trusts
	// the public Sigstore roots (fetched through Sigstore's TUF repository).
	Roots         *x509.CertPool
	Intermediates *x509.CertPool
	// IgnoreTlog accepts signatures without a transparency log entry (key
	// signatures made without --tlog-upload).
	IgnoreTlog bool
	// IgnoreSCT accepts certificates without an embedded SCT (private Fulcio
	// without a CT log).
	IgnoreSCT bool
}

// keylessHint names what keyless verification needs, for errors.
const keylessHint = "--certificate-identity (the signing workflow, e.g. " +
	"https://github.com/OWNER/REPO/.github/workflows/release.yml@refs/heads/main) and --certificate-oidc-issuer " +
	"(https://token.actions.githubusercontent.com for GitHub Actions)"

func (p Policy) validate() error {
	keyless := p.CertIdentity != "" || p.CertOIDCIssuer != ""
	switch {
	case p.Key != "" && keyless:
		return errors.New("pass either --key or --certificate-identity/--certificate-oidc-issuer, not both")
	case p.Key == "" && !keyless:
		return errors.New("say whose signatures count: --key cosign.pub, or " + keylessHint)
	case keyless && p.CertIdentity == "":
		return errors.New("keyless verification pins the signer: pass " + keylessHint)
	case keyless && p.CertOIDCIssuer == "":
		return errors.New("keyless verification pins the issuer: pass " + keylessHint)
	}
	return nil
}

// cosignArgs are the cosign CLI flags of the same policy.
func (p Policy) cosignArgs() []string {
	if p.Key != "" {
		return []string{"--key", p.Key}
	}
	return []string{"--certificate-identity", p.CertIdentity, "--certificate-oidc-issuer", p.CertOIDCIssuer}
}

// Check is one verified claim about one manifest.
type Check struct {
	Subject string      // "index" or a platform such as "linux/amd64"
	Digest  name.Digest //
	What    string      // "signature", "SBOM attestation", "provenance attestation"
	Err     error       // nil when it holds
}

// String is the check's one line.
func (c Check) String() string {
	status := "ok"
	if c.Err != nil {
		status = "FAIL: " + c.Err.Error()
	}
	return fmt.Sprintf("%s %s (%s): %s", c.Subject, c.What, c.Digest.DigestStr(), status)
}

// Report is the outcome of Verify.
type Report struct {
	Reference name.Reference
	Index     name.Digest
	Checks    []Check
	// Commands are the equivalent cosign CLI invocations.
	Commands []string
}

// Failed lists the checks that did not hold.
func (r *Report) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Err != nil {
			out = append(out, c)
		}
	}
	return out
}

type verifyOptions struct {
	remoteOpts []remote.Option
	transport  http.RoundTripper
}

// VerifyOption configures Verify.
type VerifyOption func(*verifyOptions)

// WithVerifyRemoteOptions sets how the registry is reached.
func WithVerifyRemoteOptions(opts ...remote.Option) VerifyOption {
	return func(o *verifyOptions) { o.remoteOpts = append(o.remoteOpts, opts...) }
}

// Verify checks what a release promises for ref (a tag or digest of an
// agent's index): the index signature, every platform manifest's signature,
// and each per-arch image's SBOM and provenance attestations. A failed check
// is in the report, not the error; the error is for not getting that far.
func Verify(ctx context.Context, ref name.Reference, p Policy, opts ...VerifyOption) (*Report, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	o := verifyOptions{transport: transport.New()}
	for _, opt := range opts {
		opt(&o)
	}
	ropts := reusing(ctx, remoteOptions(o.remoteOpts, o.transport))
	ociOpts := []ociremote.Option{ociremote.WithRemoteOptions(ropts...)}
	co, err := p.checkOpts(ctx, ociOpts)
	if err != nil {
		return nil, err
	}
	desc, err := remote.Get(ref, ropts...)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", ref, err)
	}
	top := ref.Context().Digest(desc.Digest.String())
	rep := &Report{Reference: ref, Index: top}
	insecure := ref.Context().Registry.Scheme() == "http"
	rep.Commands = append(rep.Commands, CosignCommand("verify", top, p.cosignArgs(), p.IgnoreTlog, insecure, ""))

	type platformImage struct {
		label  string
		digest name.Digest
	}
	var images []platformImage
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, fmt.Errorf("reading index %s: %w", top, err)
		}
		rep.Checks = append(rep.Checks, Check{Subject: "index", Digest: top, What: "signature",
			Err: verifySignature(ctx, top, co, ociOpts)})
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("reading index %s: %w", top, err)
		}
		for _, m := range im.Manifests {
			// Build tools put attestations in an index as unknown/unknown
			// entries; they are not images to verify.
			if m.Platform == nil || m.Platform.OS == "unknown" {
				continue
			}
			images = append(images, platformImage{m.Platform.String(), ref.Context().Digest(m.Digest.String())})
		}
	} else {
		images = append(images, platformImage{"image", top})
	}
	var sboms []SBOMFormat // of the first image, for the commands
	for i, im := range images {
		rep.Checks = append(rep.Checks, Check{Subject: im.label, Digest: im.digest, What: "signature",
			Err: verifySignature(ctx, im.digest, co, ociOpts)})
		formats, sbom, prov := verifyAttestations(ctx, im.digest, co, ociOpts)
		rep.Checks = append(rep.Checks,
			Check{Subject: im.label, Digest: im.digest, What: "SBOM attestation", Err: sbom},
			Check{Subject: im.label, Digest: im.digest, What: "provenance attestation", Err: prov})
		if i == 0 {
			sboms = formats
		}
	}
	if len(images) > 0 {
		if len(sboms) == 0 {
			sboms = AllSBOMFormats()
		}
		var types []string
		for _, f := range sboms {
			types = append(types, f.CosignType())
		}
		for _, typ := range append(types, "slsaprovenance1") {
			rep.Commands = append(rep.Commands, CosignCommand("verify-attestation", images[0].digest, p.cosignArgs(), p.IgnoreTlog, insecure, typ))
		}
	}
	return rep, nil
}

func (p Policy) checkOpts(ctx context.Context, ociOpts []ociremote.Option) (*cosign.CheckOpts, error) {
	co := &cosign.CheckOpts{RegistryClientOpts: ociOpts, IgnoreTlog: p.IgnoreTlog, IgnoreSCT: p.IgnoreSCT}
	if p.Key != "" {
		v, err := sigs.PublicKeyFromKeyRef(ctx, p.Key)
		if err != nil {
			return nil, fmt.Errorf("loading the public key %s: %w", p.Key, err)
		}
		co.SigVerifier = v
		return co, nil
	}
	co.Identities = []cosign.Identity{{Subject: p.CertIdentity, Issuer: p.CertOIDCIssuer}}
	if p.Roots != nil {
		co.RootCerts, co.IntermediateCerts = p.Roots, p.Intermediates
		return co, nil
	}
	tm, err := cosign.TrustedRoot()
	if err != nil {
		return nil, fmt.Errorf("loading the Sigstore trusted root: %w", err)
	}
	co.TrustedMaterial = tm
	return co, nil
}

// verifySignature checks d's signature and says in one line why it fails.
func verifySignature(ctx context.Context, d name.Digest, co *cosign.CheckOpts, ociOpts []ociremote.Option) error {
	sco := *co
	sco.ClaimVerifier = cosign.SimpleClaimVerifier
	_, _, err := cosign.VerifyImageSignatures(ctx, d, &sco)
	if err == nil {
		return nil
	}
	sigTag, _ := ociremote.SignatureTag(d, ociOpts...)
	var none *cosign.ErrNoSignaturesFound
	if errors.As(err, &none) {
		return fmt.Errorf("missing signature: nothing at %s", sigTag)
	}
	var nomatch *cosign.ErrNoMatchingSignatures
	if !errors.As(err, &nomatch) {
		return fmt.Errorf("cannot check the signature: %v", firstLine(err))
	}
	if signed := signedDigests(d, ociOpts); len(signed) > 0 && !contains(signed, d.DigestStr()) {
		return fmt.Errorf("tampered: the signature at %s signs %s, not %s (the tag was moved or the signature copied)",
			sigTag, strings.Join(signed, ", "), d.DigestStr())
	}
	return fmt.Errorf("signed, but not by the given key or identity: %v", firstLine(err))
}

// signedDigests are the manifest digests d's signatures claim to sign.
func signedDigests(d name.Digest, ociOpts []ociremote.Option) []string {
	se, err := ociremote.SignedEntity(d, ociOpts...)
	if err != nil {
		return nil
	}
	ss, err := se.Signatures()
	if err != nil {
		return nil
	}
	list, err := ss.Get()
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range list {
		p, err := s.Payload()
		if err != nil {
			continue
		}
		var sci sigpayload.SimpleContainerImage
		if json.Unmarshal(p, &sci) == nil && !contains(out, sci.Critical.Image.DockerManifestDigest) {
			out = append(out, sci.Critical.Image.DockerManifestDigest)
		}
	}
	return out
}

// verifyAttestations checks d's attestations and reports the SBOM and the
// provenance separately, with the SBOM formats it found. An SBOM in any
// format counts: which ones a release writes is its --sbom-format.
func verifyAttestations(ctx context.Context, d name.Digest, co *cosign.CheckOpts, ociOpts []ociremote.Option) (formats []SBOMFormat, sbom, prov error) {
	aco := *co
	aco.ClaimVerifier = cosign.IntotoSubjectClaimVerifier
	atts, _, err := cosign.VerifyImageAttestations(ctx, d, &aco)
	if err != nil {
		attTag, _ := ociremote.AttestationTag(d, ociOpts...)
		var none *cosign.ErrNoSignaturesFound
		var nomatch *cosign.ErrNoMatchingAttestations
		switch {
		case errors.As(err, &none) || attestationCount(d, ociOpts) == 0:
			err = fmt.Errorf("missing attestation: nothing at %s", attTag)
		case errors.As(err, &nomatch):
			err = fmt.Errorf("attested, but not by the given key or identity: %v", firstLine(err))
		default:
			err = fmt.Errorf("cannot check the attestations: %v", firstLine(err))
		}
		return nil, err, err
	}
	have := map[string]bool{}
	for _, a := range atts {
		have[predicateTypeOf(a)] = true
	}
	for _, f := range AllSBOMFormats() {
		if have[f.PredicateType()] {
			formats = append(formats, f)
		}
	}
	if len(formats) == 0 {
		sbom = fmt.Errorf("missing SBOM: no verified attestation of type %s or %s", PredicateCycloneDX, PredicateSPDX)
	}
	if !have[PredicateSLSAProvenance] {
		prov = fmt.Errorf("missing provenance: no verified attestation of type %s", PredicateSLSAProvenance)
	}
	return formats, sbom, prov
}

// attestationCount is how many attestations d has, -1 when unknown.
func attestationCount(d name.Digest, ociOpts []ociremote.Option) int {
	se, err := ociremote.SignedEntity(d, ociOpts...)
	if err != nil {
		return -1
	}
	atts, err := se.Attestations()
	if err != nil {
		return -1
	}
	list, err := atts.Get()
	if err != nil {
		return -1
	}
	return len(list)
}

// CosignCommand is the cosign CLI invocation that checks the same thing:
// verb is "verify" or "verify-attestation" (with attType, e.g. spdxjson).
func CosignCommand(verb string, d name.Digest, identityArgs []string, ignoreTlog, insecure bool, attType string) string {
	args := []string{"cosign", verb}
	if attType != "" {
		args = append(args, "--type", attType)
	}
	args = append(args, identityArgs...)
	if ignoreTlog {
		args = append(args, "--insecure-ignore-tlog=true")
	}
	if insecure {
		args = append(args, "--allow-insecure-registry")
	}
	args = append(args, d.String())
	for i, a := range args {
		args[i] = shellQuote(a)
	}
	return strings.Join(args, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@=+,%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return strings.TrimSpace(s)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
