package sign

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/in-toto/in-toto-golang/in_toto"
	"github.com/in-toto/in-toto-golang/in_toto/slsa_provenance/common"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	cbundle "github.com/sigstore/cosign/v2/pkg/cosign/bundle"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	"github.com/sigstore/cosign/v2/pkg/types"
	rekor "github.com/sigstore/rekor/pkg/client"
	rekorclient "github.com/sigstore/rekor/pkg/generated/client"
	"github.com/sigstore/rekor/pkg/generated/models"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"
	sigpayload "github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/internal/transport"
	"github.com/nothingnesses/agent-images/record"
)

// signer is the Signer of key and keyless modes; identity is the difference.
type signer struct {
	Config
	mode       Mode
	id         identity
	builderID  string // who builds, and invocation the job run, for provenance
	invocation string

	mu sync.Mutex
	co *cosign.CheckOpts // how this signer's own signatures verify, once known
	// attested holds each attestation this signer made or verified as its
	// own, by "digest predicate-type" (package comment, "Several registries").
	attested sync.Map
}

// predicateTypes are the attestations every per-arch image gets: one per
// SBOM format, then the provenance.
func (s *signer) predicateTypes() []string {
	var types []string
	for _, f := range s.SBOMFormats {
		types = append(types, f.predicateType())
	}
	return append(types, PredicateSLSAProvenance)
}

// remember keeps att as this signer's attestation of type typ for the
// digest d, unless it has one.
func (s *signer) remember(d, typ string, att oci.Signature) {
	s.attested.LoadOrStore(d+" "+typ, att)
}

// known is the attestation of type typ for d this signer remembers, nil
// when none.
func (s *signer) known(d, typ string) oci.Signature {
	att, _ := s.attested.Load(d + " " + typ)
	sig, _ := att.(oci.Signature)
	return sig
}

// SignImage implements Signer. An attestation this signer already made or
// verified for the same digest (in another registry) is stored again rather
// than made anew, so the SBOMs and the provenance are only made when some
// attestation is new.
func (s *signer) SignImage(ctx context.Context, d name.Digest, img *record.Image, agent flake.Image) (*record.Signature, error) {
	if d.DigestStr() == "" {
		return nil, fmt.Errorf("signing %s: it was not pushed", img)
	}
	ociOpts := s.withContext(ctx)
	sig, err := s.signSubject(ctx, d, ociOpts)
	if err != nil {
		return nil, fmt.Errorf("signing %s (%s): %w", d, img.Platform.String(), err)
	}
	if err := s.attest(ctx, d, img, agent, &sig, ociOpts); err != nil {
		return nil, fmt.Errorf("attesting %s (%s): %w", d, img.Platform.String(), err)
	}
	return &sig, nil
}

// predicates are the SBOMs and the provenance of img at d, by predicate type.
func (s *signer) predicates(ctx context.Context, d name.Digest, img *record.Image, agent flake.Image) (map[string]any, error) {
	docs, err := sboms(ctx, flake.Run, d, img, agent, s.SBOMFormats...)
	if err != nil {
		return nil, err
	}
	out := map[string]any{PredicateSLSAProvenance: provenance(s.Source, s.builderID, s.invocation, img, agent.Version)}
	for i, f := range s.SBOMFormats {
		out[f.predicateType()] = docs[i]
	}
	return out, nil
}

// SignIndex implements Signer. An index whose signature is there promises
// that its parts are signed too, so images are signed first.
func (s *signer) SignIndex(ctx context.Context, index name.Digest, images []name.Digest) (*record.Signing, error) {
	if len(images) == 0 {
		return nil, fmt.Errorf("signing %s: the index lists no platform images", index)
	}
	sig, err := s.signSubject(ctx, index, s.withContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("signing index %s: %w", index, err)
	}
	p, err := s.id.policy(ctx)
	if err != nil {
		return nil, fmt.Errorf("naming who signed %s: %w", index, err)
	}
	p.IgnoreTlog = s.RekorURL == "" // what this signer did, not what its own checks skip
	return &record.Signing{
		Mode:                     string(s.mode),
		Index:                    sig,
		VerifyCommand:            p.cosignCommand("verify", index, ""),
		VerifyAttestationCommand: p.cosignCommand("verify-attestation", images[0], "slsaprovenance1"),
	}, nil
}

// Check implements Signer.
func (s *signer) Check(ctx context.Context, d name.Digest, want Built) error {
	ociOpts := s.withContext(ctx)
	sigs, err := s.signed(ctx, d, ociOpts)
	if err != nil {
		return err
	}
	atts, err := check(ctx, sigs.se, d, ociOpts, true, s.checkOpts)
	if err != nil {
		return fmt.Errorf("checking the attestations of %s: %w", d, err)
	}
	attested := atts.byType()
	for _, typ := range s.predicateTypes() {
		if attested[typ] == nil {
			return fmt.Errorf("%s carries no %s attestation by %s", d, typ, s.describe(ctx))
		}
	}
	says, err := provenanceOf(attested[PredicateSLSAProvenance])
	if err != nil {
		return fmt.Errorf("reading the provenance of %s: %w", d, err)
	}
	if err := want.check(says); err != nil {
		return fmt.Errorf("%s: %w", d, err)
	}
	for _, typ := range s.predicateTypes() {
		s.remember(d.DigestStr(), typ, attested[typ])
	}
	return nil
}

// Signed proves the manifest at d carries this identity's signature.
func (s *signer) Signed(ctx context.Context, d name.Digest) error {
	_, err := s.signed(ctx, d, s.withContext(ctx))
	return err
}

// signed is what checking the signatures of d found, when one is this
// identity's.
func (s *signer) signed(ctx context.Context, d name.Digest, ociOpts []ociremote.Option) (*found, error) {
	f, err := check(ctx, nil, d, ociOpts, false, s.checkOpts)
	if err != nil {
		return nil, fmt.Errorf("checking the signatures of %s: %w", d, err)
	}
	if len(f.ok) == 0 {
		return nil, fmt.Errorf("%s carries no signature by %s", d, s.describe(ctx))
	}
	return f, nil
}

// describe names the identity in an error: never key material.
func (s *signer) describe(ctx context.Context) string {
	p, err := s.id.policy(ctx)
	switch {
	case err != nil:
		return "this workflow's keyless identity"
	case p.Key != "":
		return "the signing key " + p.Key
	}
	return "the keyless identity " + p.CertIdentity + " (issuer " + p.CertOIDCIssuer + ")"
}

// withContext returns the registry options of one call.
func (s *signer) withContext(ctx context.Context) []ociremote.Option {
	return []ociremote.Option{ociremote.WithRemoteOptions(reusing(ctx, s.Registry)...)}
}

// reusing are r's options for one call: the pusher is shared so that the
// registry is pinged and authenticated once per call, not per request (r's
// reads share one puller already).
func reusing(ctx context.Context, r *transport.Registry) []remote.Option {
	ropts := r.Options(ctx)
	if pusher, err := remote.NewPusher(ropts...); err == nil {
		ropts = append(ropts, remote.Reuse(pusher))
	}
	return ropts
}

// checkOpts is how this signer's own signatures verify: cosign's checks
// under the identity's policy, made once.
func (s *signer) checkOpts(ctx context.Context) (cosign.CheckOpts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.co == nil {
		p, err := s.id.policy(ctx)
		if err != nil {
			return cosign.CheckOpts{}, err
		}
		co, err := p.checkOpts(ctx)
		if err != nil {
			return co, err
		}
		s.co = &co
	}
	return *s.co, nil
}

// signSubject signs one manifest by digest unless this identity already has.
func (s *signer) signSubject(ctx context.Context, d name.Digest, ociOpts []ociremote.Option) (record.Signature, error) {
	f, err := check(ctx, nil, d, ociOpts, false, s.checkOpts)
	if err != nil {
		return record.Signature{}, err
	}
	sub := record.Signature{Signature: f.tag.String()}
	if len(f.ok) > 0 {
		return sub, nil
	}
	payload, err := (&sigpayload.Cosign{Image: d}).MarshalJSON()
	if err != nil {
		return sub, err
	}
	key, err := s.id.signer(ctx)
	if err != nil {
		return sub, err
	}
	raw, err := key.SignMessage(bytes.NewReader(payload))
	if err != nil {
		return sub, fmt.Errorf("signing the payload: %w", err)
	}
	opts, err := s.evidence(key, func(rc *rekorclient.Rekor, signer []byte) (*models.LogEntryAnon, error) {
		sum := sha256.New()
		sum.Write(payload)
		return cosign.TLogUpload(ctx, rc, raw, sum, signer)
	})
	if err != nil {
		return sub, err
	}
	sig, err := static.NewSignature(payload, base64.StdEncoding.EncodeToString(raw), opts...)
	if err != nil {
		return sub, err
	}
	signed, err := mutate.AttachSignatureToEntity(f.se, sig)
	if err != nil {
		return sub, err
	}
	if err := ociremote.WriteSignatures(d.Repository, signed, ociOpts...); err != nil {
		return sub, fmt.Errorf("pushing the signature %s: %w", f.tag, err)
	}
	sub.Added = append(sub.Added, "signature")
	return sub, nil
}

// evidence is what a signature carries besides itself: keyless, the
// certificate and its chain; with the transparency log, the log entry that
// upload makes (with the certificate, or the public key, as the signer).
func (s *signer) evidence(key *signingKey, upload func(*rekorclient.Rekor, []byte) (*models.LogEntryAnon, error)) ([]static.Option, error) {
	var opts []static.Option
	if key.cert != nil {
		opts = append(opts, static.WithCertChain(key.cert, key.chain))
	}
	if s.RekorURL == "" {
		return opts, nil
	}
	signer := key.cert
	if signer == nil {
		pub, err := key.PublicKey()
		if err != nil {
			return nil, err
		}
		if signer, err = cryptoutils.MarshalPublicKeyToPEM(pub); err != nil {
			return nil, err
		}
	}
	rc, err := rekor.GetRekorClient(s.RekorURL)
	if err != nil {
		return nil, fmt.Errorf("the transparency log %s: %w", s.RekorURL, err)
	}
	entry, err := upload(rc, signer)
	if err != nil {
		return nil, fmt.Errorf("uploading to the transparency log %s: %w", s.RekorURL, err)
	}
	return append(opts, static.WithBundle(cbundle.EntryToBundle(entry))), nil
}

// attest attaches an attestation of each predicate type to img at d unless
// one by this identity is already there, and records in sig where they are
// and which it added. One this signer remembers for the same digest is
// attached as it is; only when some type has none are the predicates made,
// once.
func (s *signer) attest(ctx context.Context, d name.Digest, img *record.Image, agent flake.Image, sig *record.Signature, ociOpts []ociremote.Option) error {
	f, err := check(ctx, nil, d, ociOpts, true, s.checkOpts)
	if err != nil {
		return err
	}
	sig.Attestations, sig.Predicates = f.tag.String(), s.predicateTypes()
	own, se, before := f.byType(), f.se, len(sig.Added)
	var made map[string]any
	for _, typ := range sig.Predicates {
		if own[typ] != nil {
			s.remember(d.DigestStr(), typ, own[typ])
			continue
		}
		att := s.known(d.DigestStr(), typ)
		if att == nil {
			if made == nil {
				if made, err = s.predicates(ctx, d, img, agent); err != nil {
					return err
				}
			}
			if att, err = s.signStatement(ctx, d, typ, made[typ]); err != nil {
				return fmt.Errorf("attesting %s: %w", typ, err)
			}
			s.remember(d.DigestStr(), typ, att)
		}
		if se, err = mutate.AttachAttestationToEntity(se, att); err != nil {
			return err
		}
		sig.Added = append(sig.Added, typ)
	}
	if len(sig.Added) == before {
		return nil
	}
	if err := ociremote.WriteAttestations(d.Repository, se, ociOpts...); err != nil {
		return fmt.Errorf("pushing the attestations %s: %w", f.tag, err)
	}
	return nil
}

// signStatement wraps predicate in an in-toto statement about d and signs
// it as a DSSE envelope, as cosign attest does.
func (s *signer) signStatement(ctx context.Context, d name.Digest, typ string, predicate any) (oci.Signature, error) {
	if predicate == nil {
		return nil, fmt.Errorf("no %s predicate to attest", typ)
	}
	body, err := json.Marshal(in_toto.Statement{
		StatementHeader: in_toto.StatementHeader{
			Type:          in_toto.StatementInTotoV01,
			PredicateType: typ,
			Subject: []in_toto.Subject{{
				Name:   d.Context().Name(),
				Digest: common.DigestSet{"sha256": strings.TrimPrefix(d.DigestStr(), "sha256:")},
			}},
		},
		Predicate: predicate,
	})
	if err != nil {
		return nil, err
	}
	key, err := s.id.signer(ctx)
	if err != nil {
		return nil, err
	}
	envelope, err := sigdsse.WrapSigner(key, types.IntotoPayloadType).SignMessage(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("signing the statement: %w", err)
	}
	opts, err := s.evidence(key, func(rc *rekorclient.Rekor, signer []byte) (*models.LogEntryAnon, error) {
		return cosign.TLogUploadDSSEEnvelope(ctx, rc, envelope, signer)
	})
	if err != nil {
		return nil, err
	}
	return static.NewAttestation(envelope, append(opts,
		static.WithLayerMediaType(types.DssePayloadType),
		// cosign attest sets it too; tools list attestations by it.
		static.WithAnnotations(map[string]string{"predicateType": typ}))...)
}

// predicateTypeOf reads the predicate type out of a DSSE attestation.
func predicateTypeOf(att oci.Signature) string {
	st, _ := statementOf(att)
	return st.PredicateType
}

// statement is an in-toto statement as a DSSE attestation carries it.
type statement struct {
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// statementOf reads the in-toto statement out of a DSSE attestation.
func statementOf(att oci.Signature) (statement, error) {
	payload, err := att.Payload()
	if err != nil {
		return statement{}, err
	}
	var env dsse.Envelope
	if err := json.Unmarshal(payload, &env); err != nil {
		return statement{}, fmt.Errorf("not a DSSE envelope: %w", err)
	}
	body, err := env.DecodeB64Payload()
	if err != nil {
		return statement{}, fmt.Errorf("the DSSE payload is not base64: %w", err)
	}
	var st statement
	if err := json.Unmarshal(body, &st); err != nil {
		return statement{}, fmt.Errorf("not an in-toto statement: %w", err)
	}
	return st, nil
}
