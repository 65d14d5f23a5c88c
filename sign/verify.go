package sign

import (
	"bytes"
	"cmp"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"al.essio.dev/pkg/shellescape"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/cosign/v2/pkg/oci"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	sigs "github.com/sigstore/cosign/v2/pkg/signature"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/signature"
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
	// signatures made without a log upload).
	IgnoreTlog bool
	// IgnoreSCT accepts certificates without an embedded SCT (private Fulcio
	// without a CT log).
	IgnoreSCT bool
	// Registry is how registries are reached; nil makes a client.
	Registry *transport.Registry

	// verifier checks a signer's own key signatures (Key only names it).
	verifier signature.Verifier
	// trusted is Sigstore's trusted root when a signer loaded it already.
	trusted root.TrustedMaterial
}

// The ways a Policy names no one, or two; Validate returns them.
var (
	ErrNoSigner       = errors.New("say whose signatures count: a public key, or a keyless certificate identity and OIDC issuer")
	ErrKeyAndKeyless  = errors.New("a policy names a key or a keyless identity, not both")
	ErrNoCertIdentity = errors.New("keyless verification pins the signer: the certificate identity is missing")
	ErrNoCertIssuer   = errors.New("keyless verification pins the issuer: the certificate's OIDC issuer is missing")
)

// Validate says whether the policy names exactly one signer.
func (p Policy) Validate() error {
	keyless := p.CertIdentity != "" || p.CertOIDCIssuer != ""
	switch {
	case p.Key != "" && keyless:
		return ErrKeyAndKeyless
	case p.Key == "" && !keyless && p.verifier == nil:
		return ErrNoSigner
	case keyless && p.CertIdentity == "":
		return ErrNoCertIdentity
	case keyless && p.CertOIDCIssuer == "":
		return ErrNoCertIssuer
	}
	return nil
}

// checkOpts are cosign's verification settings of the policy: the key, or
// the identity under the given CA or Sigstore's trusted root, and the
// transparency log's keys when entries are checked.
func (p Policy) checkOpts(ctx context.Context) (cosign.CheckOpts, error) {
	co := cosign.CheckOpts{IgnoreTlog: p.IgnoreTlog, IgnoreSCT: p.IgnoreSCT, SigVerifier: p.verifier}
	var err error
	switch {
	case p.verifier != nil:
	case p.Key != "":
		if co.SigVerifier, err = sigs.PublicKeyFromKeyRef(ctx, p.Key); err != nil {
			return co, fmt.Errorf("loading the public key %s: %w", p.Key, err)
		}
	default:
		co.Identities = []cosign.Identity{{Subject: p.CertIdentity, Issuer: p.CertOIDCIssuer}}
		co.RootCerts, co.IntermediateCerts, co.TrustedMaterial = p.Roots, p.Intermediates, p.trusted
		if p.Roots == nil && p.trusted == nil {
			if co.TrustedMaterial, err = cosign.TrustedRoot(); err != nil {
				return co, fmt.Errorf("loading the Sigstore trusted root: %w", err)
			}
		}
	}
	if !co.IgnoreTlog && co.TrustedMaterial == nil {
		// cosign's own source of Rekor's keys: SIGSTORE_REKOR_PUBLIC_KEY,
		// else Sigstore's TUF repository.
		keys, err := cosign.GetRekorPubs(ctx)
		if err != nil {
			return co, fmt.Errorf("loading the transparency log's public keys: %w", err)
		}
		co.RekorPubKeys = keys
	}
	return co, nil
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
	return slices.DeleteFunc(slices.Clone(r.Checks), func(c Check) bool { return c.Err == nil })
}

// Verify checks what a release promises for ref (a tag or digest of an
// agent's index): the index signature, every platform manifest's signature,
// and each per-arch image's SBOM and provenance attestations. A failed check
// is in the report, not the error; the error is for not getting that far.
func Verify(ctx context.Context, ref name.Reference, p Policy) (*Report, error) {
	v, err := NewAttestationVerifier(ctx, p)
	if err != nil {
		return nil, err
	}
	ropts := reusing(ctx, v.registry)
	ociOpts := []ociremote.Option{ociremote.WithRemoteOptions(ropts...)}
	desc, err := remote.Get(ref, ropts...)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", ref, err)
	}
	top := ref.Context().Digest(desc.Digest.String())
	rep := &Report{Reference: ref, Index: top}
	rep.Commands = append(rep.Commands, p.cosignCommand("verify", top, ""))

	labels, images := []string{"image"}, []name.Digest{top}
	if desc.MediaType.IsIndex() {
		rep.Checks = append(rep.Checks, Check{Subject: "index", Digest: top, What: "signature",
			Err: v.signature(ctx, top, ociOpts)})
		im, err := v1.ParseIndexManifest(bytes.NewReader(desc.Manifest))
		if err != nil {
			return nil, fmt.Errorf("reading index %s: %w", top, err)
		}
		labels, images = nil, nil
		for _, m := range im.Manifests {
			// Build tools put attestations in an index as unknown/unknown
			// entries; they are not images to verify.
			if m.Platform != nil && m.Platform.OS != "unknown" {
				labels, images = append(labels, m.Platform.String()), append(images, ref.Context().Digest(m.Digest.String()))
			}
		}
	}
	var sboms []SBOMFormat // of the first image, for the commands
	for i, d := range images {
		formats, sbom, prov := v.sbomAndProvenance(ctx, d, ociOpts)
		rep.Checks = append(rep.Checks,
			Check{Subject: labels[i], Digest: d, What: "signature", Err: v.signature(ctx, d, ociOpts)},
			Check{Subject: labels[i], Digest: d, What: "SBOM attestation", Err: sbom},
			Check{Subject: labels[i], Digest: d, What: "provenance attestation", Err: prov},
			Check{Subject: labels[i], Digest: d, What: "blobs", Err: pullable(ctx, v.registry, d, ropts)})
		if i == 0 {
			sboms = formats
		}
	}
	if len(images) > 0 {
		if len(sboms) == 0 {
			sboms = allSBOMFormats()
		}
		for _, f := range sboms {
			rep.Commands = append(rep.Commands, p.cosignCommand("verify-attestation", images[0], f.cosignType()))
		}
		rep.Commands = append(rep.Commands, p.cosignCommand("verify-attestation", images[0], "slsaprovenance1"))
	}
	return rep, nil
}

// found is what checking the signatures or the attestations of one
// manifest found.
type found struct {
	se      oci.SignedEntity // the manifest, with its signatures and attestations
	tag     name.Tag         // where they are stored
	all, ok []oci.Signature  // every one there, and those that hold
	why     error            // cosign's reason the first that failed did
}

// byType are the attestations that hold, the first of each predicate type.
func (f *found) byType() map[string]oci.Signature {
	out := map[string]oci.Signature{}
	for _, a := range f.ok {
		if typ := predicateTypeOf(a); out[typ] == nil {
			out[typ] = a
		}
	}
	return out
}

// check reads the signatures (or with attestations set, the attestations)
// of the manifest d, from se unless it is nil, and checks each with cosign
// under what co returns, asked only when there is one to check: a simple
// signing payload, or a DSSE envelope, whose claim is about d. Those that
// hold are copied into memory.
func check(ctx context.Context, se oci.SignedEntity, d name.Digest, ociOpts []ociremote.Option, attestations bool,
	co func(context.Context) (cosign.CheckOpts, error)) (*found, error) {
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return nil, err
	}
	if se == nil {
		if se, err = ociremote.SignedEntity(d, ociOpts...); err != nil {
			return nil, fmt.Errorf("reading %s: %w", d, err)
		}
	}
	f := &found{se: se}
	tag, read, verify, claims := ociremote.SignatureTag, se.Signatures, cosign.VerifyImageSignature, cosign.SimpleClaimVerifier
	if attestations {
		tag, read, verify, claims = ociremote.AttestationTag, se.Attestations, cosign.VerifyBlobAttestation, cosign.IntotoSubjectClaimVerifier
	}
	if f.tag, err = tag(d, ociOpts...); err != nil {
		return nil, err
	}
	sigs, err := read()
	if err == nil {
		f.all, err = sigs.Get()
	}
	if err != nil || len(f.all) == 0 {
		return f, err
	}
	opts, err := co(ctx)
	if err != nil {
		return nil, err
	}
	opts.ClaimVerifier = claims
	for _, sig := range f.all {
		if _, err := verify(ctx, sig, h, &opts); err != nil {
			f.why = cmp.Or(f.why, err)
			continue
		}
		if sig, err = static.Copy(sig); err != nil {
			return nil, err
		}
		f.ok = append(f.ok, sig)
	}
	return f, nil
}

// signature checks d's signature and says in one line why it fails.
func (v *AttestationVerifier) signature(ctx context.Context, d name.Digest, ociOpts []ociremote.Option) error {
	f, err := check(ctx, nil, d, ociOpts, false, v.checkOpts)
	switch {
	case err != nil:
		return fmt.Errorf("cannot check the signature: %v", firstLine(err))
	case len(f.ok) > 0:
		return nil
	case len(f.all) == 0:
		return fmt.Errorf("missing signature: nothing at %s", f.tag)
	}
	var signed []string // the manifests the signatures there claim to sign
	for _, s := range f.all {
		var sci sigpayload.SimpleContainerImage
		if p, err := s.Payload(); err == nil && json.Unmarshal(p, &sci) == nil {
			signed = append(signed, sci.Critical.Image.DockerManifestDigest)
		}
	}
	if len(signed) > 0 && !slices.Contains(signed, d.DigestStr()) {
		return fmt.Errorf("tampered: the signature at %s signs %s, not %s (the tag was moved or the signature copied)",
			f.tag, strings.Join(slices.Compact(signed), ", "), d.DigestStr())
	}
	return fmt.Errorf("signed, but not by the given key or identity: %v", firstLine(f.why))
}

// sbomAndProvenance checks d's attestations and reports the SBOM and the
// provenance separately, with the SBOM formats it found. An SBOM in any
// format counts: which ones a release writes is its choice.
func (v *AttestationVerifier) sbomAndProvenance(ctx context.Context, d name.Digest, ociOpts []ociremote.Option) (formats []SBOMFormat, sbom, prov error) {
	f, err := v.attestations(ctx, d, ociOpts)
	if err != nil {
		return nil, err, err
	}
	have := f.byType()
	for _, f := range allSBOMFormats() {
		if have[f.predicateType()] != nil {
			formats = append(formats, f)
		}
	}
	if len(formats) == 0 {
		sbom = fmt.Errorf("missing SBOM: no verified attestation of type %s or %s", PredicateCycloneDX, PredicateSPDX)
	}
	if have[PredicateSLSAProvenance] == nil {
		prov = fmt.Errorf("missing provenance: no verified attestation of type %s", PredicateSLSAProvenance)
	}
	return formats, sbom, prov
}

// attestations finds d's attestations whose signature holds and whose
// in-toto subject is d, and says in one line why there are none.
func (v *AttestationVerifier) attestations(ctx context.Context, d name.Digest, ociOpts []ociremote.Option) (*found, error) {
	f, err := check(ctx, nil, d, ociOpts, true, v.checkOpts)
	switch {
	case err != nil:
		return nil, fmt.Errorf("cannot check the attestations: %v", firstLine(err))
	case len(f.all) == 0:
		return nil, fmt.Errorf("missing attestation: nothing at %s", f.tag)
	case len(f.ok) == 0:
		return nil, fmt.Errorf("attested, but not by the given key or identity: %v", firstLine(f.why))
	}
	return f, nil
}

// AttestationVerifier reads attestations that verify under one Policy, for
// callers that use what they say (release diff compares two releases' SBOMs
// and provenances). Build it once: a keyless policy fetches Sigstore's
// trusted root.
type AttestationVerifier struct {
	co       cosign.CheckOpts
	registry *transport.Registry
}

// NewAttestationVerifier checks p and loads what it names (the public key,
// or the trusted root), before any attestation is read.
func NewAttestationVerifier(ctx context.Context, p Policy) (*AttestationVerifier, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	co, err := p.checkOpts(ctx)
	if err != nil {
		return nil, err
	}
	reg := p.Registry
	if reg == nil {
		reg = transport.NewRegistry()
	}
	return &AttestationVerifier{co: co, registry: reg}, nil
}

func (v *AttestationVerifier) checkOpts(context.Context) (cosign.CheckOpts, error) { return v.co, nil }

// Attestations returns the attestations of the manifest d whose signature
// holds under the policy and whose in-toto subject is d; an error when
// there are none, saying why.
func (v *AttestationVerifier) Attestations(ctx context.Context, d name.Digest) ([]oci.Signature, error) {
	ociOpts := []ociremote.Option{ociremote.WithRemoteOptions(reusing(ctx, v.registry)...)}
	f, err := v.attestations(ctx, d, ociOpts)
	if err != nil {
		return nil, fmt.Errorf("verifying the attestations of %s: %w", d, err)
	}
	return f.ok, nil
}

// cosignCommand is the cosign CLI invocation that checks the same as p:
// verb is "verify" or "verify-attestation" (with attType, e.g. spdxjson).
func (p Policy) cosignCommand(verb string, d name.Digest, attType string) string {
	args := []string{"cosign", verb}
	if attType != "" {
		args = append(args, "--type", attType)
	}
	if p.Key != "" {
		args = append(args, "--key", p.Key)
	} else {
		args = append(args, "--certificate-identity", p.CertIdentity, "--certificate-oidc-issuer", p.CertOIDCIssuer)
	}
	if p.IgnoreTlog {
		args = append(args, "--insecure-ignore-tlog=true")
	}
	if d.Context().Registry.Scheme() == "http" {
		args = append(args, "--allow-insecure-registry")
	}
	return shellescape.QuoteCommand(append(args, d.String()))
}

func firstLine(err error) string {
	if err == nil {
		return ""
	}
	s, _, _ := strings.Cut(err.Error(), "\n")
	return strings.TrimSpace(s)
}

// pullable checks that every blob the image manifest d names is there: a
// signed image whose layer the registry lost cannot be pulled. reg asks
// about each blob once per run, so what publishing checked is not asked
// again.
func pullable(ctx context.Context, reg *transport.Registry, d name.Digest, ropts []remote.Option) error {
	img, err := remote.Image(d, ropts...)
	if err != nil {
		return err
	}
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	var missing []string
	for _, desc := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		ok, err := reg.HasBlob(ctx, d.Context(), desc.Digest)
		if err != nil {
			return fmt.Errorf("checking blob %s: %w", desc.Digest, err)
		}
		if !ok {
			missing = append(missing, desc.Digest.String())
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the registry lacks blob %s: the image cannot be pulled; the next release puts it back", strings.Join(missing, ", "))
	}
	return nil
}
