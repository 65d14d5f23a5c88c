package sign

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	cbundle "github.com/sigstore/cosign/v2/pkg/cosign/bundle"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/cosign/v2/pkg/types"
	"github.com/sigstore/rekor/pkg/generated/models"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	sigpayload "github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/record"
)

// signer is the Signer of key and keyless modes; identity is the difference.
type signer struct {
	mode       Mode
	id         identity
	source     Source
	builderID  string
	invocation string
	rekorURL   string // "" = no transparency log
	sbom       []SBOMFormat
	transport  http.RoundTripper
	remoteOpts []remote.Option

	// attested holds, by subject digest and predicate type, each
	// attestation this signer made or verified as its own, so that the
	// same image in another registry gets that very attestation (see the
	// package comment, "Several registries").
	mu       sync.Mutex
	attested map[v1.Hash]map[string]oci.Signature
}

func (s *signer) Mode() Mode { return s.mode }

// predicateTypes are the attestations every per-arch image gets: one per
// SBOM format, then the provenance.
func (s *signer) predicateTypes() []string {
	var types []string
	for _, f := range s.sbom {
		types = append(types, f.PredicateType())
	}
	return append(types, PredicateSLSAProvenance)
}

// remember keeps att as this signer's attestation of type typ for d. It is
// copied into memory: the registry it was read from may be gone by the
// time another registry needs it.
func (s *signer) remember(d v1.Hash, typ string, att oci.Signature) error {
	att, err := static.Copy(att)
	if err != nil {
		return fmt.Errorf("reading the %s attestation of %s: %w", typ, d, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.attested == nil {
		s.attested = map[v1.Hash]map[string]oci.Signature{}
	}
	if s.attested[d] == nil {
		s.attested[d] = map[string]oci.Signature{}
	}
	if s.attested[d][typ] == nil {
		s.attested[d][typ] = att
	}
	return nil
}

// known is the attestation of type typ for d this signer remembers, nil
// when none.
func (s *signer) known(d v1.Hash, typ string) oci.Signature {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attested[d][typ]
}

// SignImage implements Signer. An attestation this signer already made or
// verified for the same digest (in another registry) is stored again rather
// than made anew, so the SBOMs, which read every layer, and the provenance
// are only computed when some attestation is new.
func (s *signer) SignImage(ctx context.Context, img *record.Image, agent flake.Image) error {
	if img.Ref.DigestStr() == "" {
		return fmt.Errorf("signing %s: it was not pushed", img)
	}
	ociOpts := s.withContext(ctx)
	sig, err := s.signSubject(ctx, img.Ref, ociOpts)
	if err != nil {
		return fmt.Errorf("signing %s (%s): %w", img.Ref, img.Platform.String(), err)
	}
	types := s.predicateTypes()
	statements := func() ([]statement, error) {
		sboms, err := SBOMs(ctx, img, agent, s.sbom...)
		if err != nil {
			return nil, err
		}
		var out []statement
		for i, f := range s.sbom {
			out = append(out, statement{predicateType: f.PredicateType(), predicate: sboms[i]})
		}
		return append(out, statement{predicateType: PredicateSLSAProvenance, predicate: Provenance(s.source, s.builderID, s.invocation, img, agent.Version)}), nil
	}
	attTag, added, err := s.attest(ctx, img.Ref, types, statements, ociOpts)
	if err != nil {
		return fmt.Errorf("attesting %s (%s): %w", img.Ref, img.Platform.String(), err)
	}
	sig.Attestations = attTag.String()
	sig.Predicates = types
	sig.Added = append(sig.Added, added...)
	img.Signature = &sig
	return nil
}

// SignIndex implements Signer. An index whose signature is there promises
// that its parts are signed too, so images are signed first.
func (s *signer) SignIndex(ctx context.Context, index name.Digest, images []*record.Image) (*record.Signing, error) {
	if len(images) == 0 {
		return nil, fmt.Errorf("signing %s: the index lists no platform images", index)
	}
	sig, err := s.signSubject(ctx, index, s.withContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("signing index %s: %w", index, err)
	}
	args, err := s.id.cosignArgs(ctx)
	if err != nil {
		return nil, fmt.Errorf("naming who signed %s: %w", index, err)
	}
	insecure := index.Context().Registry.Scheme() == "http"
	return &record.Signing{
		Mode:                     string(s.mode),
		Index:                    sig,
		VerifyCommand:            CosignCommand("verify", index, args, s.rekorURL == "", insecure, ""),
		VerifyAttestationCommand: CosignCommand("verify-attestation", images[0].Ref, args, s.rekorURL == "", insecure, "slsaprovenance1"),
	}, nil
}

// Check implements Signer.
func (s *signer) Check(ctx context.Context, img *record.Image) error {
	d := img.Ref
	ociOpts := s.withContext(ctx)
	se, err := ociremote.SignedEntity(d, ociOpts...)
	if err != nil {
		return fmt.Errorf("reading %s: %w", d, err)
	}
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return err
	}
	sigs, err := se.Signatures()
	if err != nil {
		return fmt.Errorf("reading the signatures of %s: %w", d, err)
	}
	signed, err := s.findOwn(ctx, sigs, func(sig oci.Signature, v signature.Verifier) bool {
		return verifySimpleSigning(sig, v) == nil && cosign.SimpleClaimVerifier(sig, h, nil) == nil
	})
	if err != nil {
		return fmt.Errorf("checking the signatures of %s: %w", d, err)
	}
	if signed == nil {
		return fmt.Errorf("%s carries no signature by %s", d, s.id.describe(ctx))
	}
	atts, err := se.Attestations()
	if err != nil {
		return fmt.Errorf("reading the attestations of %s: %w", d, err)
	}
	// The attestations this signer writes. Each one found is remembered:
	// stored with the same image in another registry, it stays the one
	// the job that built the image made.
	for _, typ := range s.predicateTypes() {
		att, err := s.findOwn(ctx, atts, attestationOf(h, typ))
		if err != nil {
			return fmt.Errorf("checking the attestations of %s: %w", d, err)
		}
		if att == nil {
			return fmt.Errorf("%s carries no %s attestation by %s", d, typ, s.id.describe(ctx))
		}
		if err := s.remember(h, typ, att); err != nil {
			return err
		}
	}
	return nil
}

// attestationOf accepts a DSSE attestation of type typ about h.
func attestationOf(h v1.Hash, typ string) func(oci.Signature, signature.Verifier) bool {
	return func(sig oci.Signature, v signature.Verifier) bool {
		return verifyDSSE(sig, v) == nil && cosign.IntotoSubjectClaimVerifier(sig, h, nil) == nil && predicateTypeOf(sig) == typ
	}
}

// withContext returns the registry options of one Sign call. The puller
// and pusher are shared so that the registry is pinged and authenticated
// once per call, not once per request.
func (s *signer) withContext(ctx context.Context) []ociremote.Option {
	return []ociremote.Option{ociremote.WithRemoteOptions(reusing(ctx, s.remoteOpts)...)}
}

func reusing(ctx context.Context, base []remote.Option) []remote.Option {
	ropts := append(append([]remote.Option{}, base...), remote.WithContext(ctx))
	if puller, err := remote.NewPuller(ropts...); err == nil {
		ropts = append(ropts, remote.Reuse(puller))
	}
	if pusher, err := remote.NewPusher(ropts...); err == nil {
		ropts = append(ropts, remote.Reuse(pusher))
	}
	return ropts
}

// signSubject signs one manifest by digest unless this identity already has.
func (s *signer) signSubject(ctx context.Context, d name.Digest, ociOpts []ociremote.Option) (record.Signature, error) {
	sigTag, err := ociremote.SignatureTag(d, ociOpts...)
	if err != nil {
		return record.Signature{}, err
	}
	sub := record.Signature{Signature: sigTag.String()}
	se, err := ociremote.SignedEntity(d, ociOpts...)
	if err != nil {
		return record.Signature{}, fmt.Errorf("reading %s: %w", d, err)
	}
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return record.Signature{}, err
	}
	existing, err := se.Signatures()
	if err != nil {
		return record.Signature{}, fmt.Errorf("reading the signatures of %s: %w", d, err)
	}
	done, err := s.findOwn(ctx, existing, func(sig oci.Signature, v signature.Verifier) bool {
		return verifySimpleSigning(sig, v) == nil && cosign.SimpleClaimVerifier(sig, h, nil) == nil
	})
	if err != nil || done != nil {
		return sub, err
	}
	payload, err := (&sigpayload.Cosign{Image: d}).MarshalJSON()
	if err != nil {
		return record.Signature{}, err
	}
	sv, cert, chain, err := s.id.signer(ctx)
	if err != nil {
		return record.Signature{}, err
	}
	raw, err := sv.SignMessage(bytes.NewReader(payload))
	if err != nil {
		return record.Signature{}, fmt.Errorf("signing the payload: %w", err)
	}
	opts := []static.Option{}
	if cert != nil {
		opts = append(opts, static.WithCertChain(cert, chain))
	}
	if s.rekorURL != "" {
		entry, err := s.uploadHashedRekord(ctx, raw, payload)
		if err != nil {
			return record.Signature{}, err
		}
		opts = append(opts, static.WithBundle(cbundle.EntryToBundle(entry)))
	}
	sig, err := static.NewSignature(payload, base64.StdEncoding.EncodeToString(raw), opts...)
	if err != nil {
		return record.Signature{}, err
	}
	signed, err := mutate.AttachSignatureToEntity(se, sig)
	if err != nil {
		return record.Signature{}, err
	}
	if err := ociremote.WriteSignatures(d.Repository, signed, ociOpts...); err != nil {
		return record.Signature{}, fmt.Errorf("pushing the signature %s: %w", sigTag, err)
	}
	sub.Added = append(sub.Added, "signature")
	return sub, nil
}

type statement struct {
	predicateType string
	predicate     any
}

// attest attaches an attestation of each predicate type to d unless one by
// this identity is already there. One this signer remembers for the same
// digest is attached as it is; only when some type has none are the
// statements made, once.
func (s *signer) attest(ctx context.Context, d name.Digest, types []string, statements func() ([]statement, error), ociOpts []ociremote.Option) (name.Tag, []string, error) {
	attTag, err := ociremote.AttestationTag(d, ociOpts...)
	if err != nil {
		return name.Tag{}, nil, err
	}
	se, err := ociremote.SignedEntity(d, ociOpts...)
	if err != nil {
		return name.Tag{}, nil, fmt.Errorf("reading %s: %w", d, err)
	}
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return name.Tag{}, nil, err
	}
	existing, err := se.Attestations()
	if err != nil {
		return name.Tag{}, nil, fmt.Errorf("reading the attestations of %s: %w", d, err)
	}
	var made []statement
	var added []string
	for _, typ := range types {
		own, err := s.findOwn(ctx, existing, attestationOf(h, typ))
		if err != nil {
			return name.Tag{}, nil, err
		}
		if own != nil {
			if err := s.remember(h, typ, own); err != nil {
				return name.Tag{}, nil, err
			}
			continue
		}
		att := s.known(h, typ)
		if att == nil {
			if made == nil {
				if made, err = statements(); err != nil {
					return name.Tag{}, nil, err
				}
			}
			st, ok := statementOf(made, typ)
			if !ok {
				return name.Tag{}, nil, fmt.Errorf("no %s statement to attest", typ)
			}
			if att, err = s.signStatement(ctx, d, st); err != nil {
				return name.Tag{}, nil, fmt.Errorf("attesting %s: %w", typ, err)
			}
			if err := s.remember(h, typ, att); err != nil {
				return name.Tag{}, nil, err
			}
		}
		if se, err = mutate.AttachAttestationToEntity(se, att); err != nil {
			return name.Tag{}, nil, err
		}
		added = append(added, typ)
	}
	if len(added) == 0 {
		return attTag, nil, nil
	}
	if err := ociremote.WriteAttestations(d.Repository, se, ociOpts...); err != nil {
		return name.Tag{}, nil, fmt.Errorf("pushing the attestations %s: %w", attTag, err)
	}
	return attTag, added, nil
}

func statementOf(statements []statement, typ string) (statement, bool) {
	for _, st := range statements {
		if st.predicateType == typ {
			return st, true
		}
	}
	return statement{}, false
}

func (s *signer) signStatement(ctx context.Context, d name.Digest, st statement) (oci.Signature, error) {
	body, err := json.Marshal(inTotoStatement{
		Type:          "https://in-toto.io/Statement/v0.1",
		PredicateType: st.predicateType,
		Subject: []inTotoSubject{{
			Name:   d.Context().Name(),
			Digest: map[string]string{"sha256": strings.TrimPrefix(d.DigestStr(), "sha256:")},
		}},
		Predicate: st.predicate,
	})
	if err != nil {
		return nil, err
	}
	sv, cert, chain, err := s.id.signer(ctx)
	if err != nil {
		return nil, err
	}
	envelope, err := dsse.WrapSigner(sv, types.IntotoPayloadType).SignMessage(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("signing the statement: %w", err)
	}
	opts := []static.Option{
		static.WithLayerMediaType(types.DssePayloadType),
		// cosign attest sets it too; tools list attestations by it.
		static.WithAnnotations(map[string]string{"predicateType": st.predicateType}),
	}
	if cert != nil {
		opts = append(opts, static.WithCertChain(cert, chain))
	}
	if s.rekorURL != "" {
		entry, err := s.uploadDSSE(ctx, envelope)
		if err != nil {
			return nil, err
		}
		opts = append(opts, static.WithBundle(cbundle.EntryToBundle(entry)))
	}
	return static.NewAttestation(envelope, opts...)
}

type inTotoStatement struct {
	Type          string          `json:"_type"`
	PredicateType string          `json:"predicateType"`
	Subject       []inTotoSubject `json:"subject"`
	Predicate     any             `json:"predicate"`
}

type inTotoSubject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// findOwn returns the first of sigs made by this identity that passes ok,
// nil when none does.
func (s *signer) findOwn(ctx context.Context, sigs oci.Signatures, ok func(oci.Signature, signature.Verifier) bool) (oci.Signature, error) {
	list, err := sigs.Get()
	if err != nil {
		return nil, err
	}
	for _, sig := range list {
		v, err := s.id.verifierFor(ctx, sig)
		if err != nil {
			return nil, err
		}
		if v != nil && ok(sig, v) {
			return sig, nil
		}
	}
	return nil, nil
}

func verifySimpleSigning(sig oci.Signature, v signature.Verifier) error {
	b64, err := sig.Base64Signature()
	if err != nil {
		return err
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return err
	}
	payload, err := sig.Payload()
	if err != nil {
		return err
	}
	return v.VerifySignature(bytes.NewReader(raw), bytes.NewReader(payload))
}

func verifyDSSE(sig oci.Signature, v signature.Verifier) error {
	envelope, err := sig.Payload()
	if err != nil {
		return err
	}
	return dsse.WrapVerifier(v).VerifySignature(bytes.NewReader(envelope), nil)
}

// predicateTypeOf reads the predicate type out of a DSSE attestation.
func predicateTypeOf(sig oci.Signature) string {
	envelope, err := sig.Payload()
	if err != nil {
		return ""
	}
	var e struct {
		Payload string `json:"payload"`
	}
	if json.Unmarshal(envelope, &e) != nil {
		return ""
	}
	body, err := base64.StdEncoding.DecodeString(e.Payload)
	if err != nil {
		return ""
	}
	var st struct {
		PredicateType string `json:"predicateType"`
	}
	if json.Unmarshal(body, &st) != nil {
		return ""
	}
	return st.PredicateType
}

func (s *signer) uploadHashedRekord(ctx context.Context, sig, payload []byte) (*models.LogEntryAnon, error) {
	rc, err := newRekorClient(s.rekorURL, s.transport)
	if err != nil {
		return nil, err
	}
	key, err := s.id.tlogKey(ctx)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write(payload)
	entry, err := cosign.TLogUpload(ctx, rc, sig, h, key)
	if err != nil {
		return nil, fmt.Errorf("uploading to the transparency log %s: %w", s.rekorURL, err)
	}
	return entry, nil
}

func (s *signer) uploadDSSE(ctx context.Context, envelope []byte) (*models.LogEntryAnon, error) {
	rc, err := newRekorClient(s.rekorURL, s.transport)
	if err != nil {
		return nil, err
	}
	key, err := s.id.tlogKey(ctx)
	if err != nil {
		return nil, err
	}
	entry, err := cosign.TLogUploadDSSEEnvelope(ctx, rc, envelope, key)
	if err != nil {
		return nil, fmt.Errorf("uploading to the transparency log %s: %w", s.rekorURL, err)
	}
	return entry, nil
}
