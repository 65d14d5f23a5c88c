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
	"golang.org/x/sync/errgroup"
)

// signer is the Signer of key and keyless modes; identity is the difference.
type signer struct {
	mode       Mode
	id         identity
	rekorURL   string // "" = no transparency log
	sbom       []SBOMFormat
	transport  http.RoundTripper
	remoteOpts []remote.Option
}

func (s *signer) Mode() Mode { return s.mode }

// Sign implements Signer.
func (s *signer) Sign(ctx context.Context, r Request) (*Result, error) {
	if len(r.Platforms) == 0 {
		return nil, fmt.Errorf("signing %s: the request lists no platform images", r.Index)
	}
	ociOpts := s.withContext(ctx)
	res := &Result{Mode: s.mode, Platforms: make([]Subject, len(r.Platforms))}
	// Per-arch images first, the index last: an index whose signature is
	// there promises that its parts are signed too.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i, p := range r.Platforms {
		g.Go(func() error {
			sub, err := s.signPlatform(gctx, r, p, ociOpts)
			if err != nil {
				return fmt.Errorf("signing %s (%s): %w", p.Manifest, p.Platform.String(), err)
			}
			res.Platforms[i] = sub
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	idx, err := s.signSubject(ctx, r.Index, ociOpts)
	if err != nil {
		return nil, fmt.Errorf("signing index %s: %w", r.Index, err)
	}
	res.Index = idx
	args, err := s.id.cosignArgs(ctx)
	if err != nil {
		return nil, fmt.Errorf("naming who signed %s: %w", r.Index, err)
	}
	insecure := r.Index.Context().Registry.Scheme() == "http"
	res.VerifyCommand = CosignCommand("verify", r.Index, args, s.rekorURL == "", insecure, "")
	res.VerifyAttestationCommand = CosignCommand("verify-attestation", r.Platforms[0].Manifest, args, s.rekorURL == "", insecure, "slsaprovenance1")
	return res, nil
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

func (s *signer) signPlatform(ctx context.Context, r Request, p Platform, ociOpts []ociremote.Option) (Subject, error) {
	sub, err := s.signSubject(ctx, p.Manifest, ociOpts)
	if err != nil {
		return Subject{}, err
	}
	sub.Platform = p.Platform.String()
	sboms, err := SBOMs(ctx, r, p, s.sbom...)
	if err != nil {
		return Subject{}, err
	}
	var statements []statement
	for i, f := range s.sbom {
		statements = append(statements, statement{predicateType: f.PredicateType(), predicate: sboms[i]})
	}
	statements = append(statements, statement{predicateType: PredicateSLSAProvenance, predicate: Provenance(r, p)})
	attTag, added, err := s.attest(ctx, p.Manifest, statements, ociOpts)
	if err != nil {
		return Subject{}, err
	}
	sub.Attestations = attTag.String()
	for _, st := range statements {
		sub.Predicates = append(sub.Predicates, st.predicateType)
	}
	sub.Added = append(sub.Added, added...)
	return sub, nil
}

// signSubject signs one manifest by digest unless this identity already has.
func (s *signer) signSubject(ctx context.Context, d name.Digest, ociOpts []ociremote.Option) (Subject, error) {
	sigTag, err := ociremote.SignatureTag(d, ociOpts...)
	if err != nil {
		return Subject{}, err
	}
	sub := Subject{Digest: d.String(), Signature: sigTag.String()}
	se, err := ociremote.SignedEntity(d, ociOpts...)
	if err != nil {
		return Subject{}, fmt.Errorf("reading %s: %w", d, err)
	}
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return Subject{}, err
	}
	existing, err := se.Signatures()
	if err != nil {
		return Subject{}, fmt.Errorf("reading the signatures of %s: %w", d, err)
	}
	done, err := s.hasOwn(ctx, existing, func(sig oci.Signature, v signature.Verifier) bool {
		return verifySimpleSigning(sig, v) == nil && cosign.SimpleClaimVerifier(sig, h, nil) == nil
	})
	if err != nil || done {
		return sub, err
	}
	payload, err := (&sigpayload.Cosign{Image: d}).MarshalJSON()
	if err != nil {
		return Subject{}, err
	}
	sv, cert, chain, err := s.id.signer(ctx)
	if err != nil {
		return Subject{}, err
	}
	raw, err := sv.SignMessage(bytes.NewReader(payload))
	if err != nil {
		return Subject{}, fmt.Errorf("signing the payload: %w", err)
	}
	opts := []static.Option{}
	if cert != nil {
		opts = append(opts, static.WithCertChain(cert, chain))
	}
	if s.rekorURL != "" {
		entry, err := s.uploadHashedRekord(ctx, raw, payload)
		if err != nil {
			return Subject{}, err
		}
		opts = append(opts, static.WithBundle(cbundle.EntryToBundle(entry)))
	}
	sig, err := static.NewSignature(payload, base64.StdEncoding.EncodeToString(raw), opts...)
	if err != nil {
		return Subject{}, err
	}
	signed, err := mutate.AttachSignatureToEntity(se, sig)
	if err != nil {
		return Subject{}, err
	}
	if err := ociremote.WriteSignatures(d.Repository, signed, ociOpts...); err != nil {
		return Subject{}, fmt.Errorf("pushing the signature %s: %w", sigTag, err)
	}
	sub.Added = append(sub.Added, "signature")
	return sub, nil
}

type statement struct {
	predicateType string
	predicate     any
}

// attest attaches each statement to d unless an attestation of the same
// predicate type by this identity is already there.
func (s *signer) attest(ctx context.Context, d name.Digest, statements []statement, ociOpts []ociremote.Option) (name.Tag, []string, error) {
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
	var added []string
	for _, st := range statements {
		done, err := s.hasOwn(ctx, existing, func(sig oci.Signature, v signature.Verifier) bool {
			return verifyDSSE(sig, v) == nil && cosign.IntotoSubjectClaimVerifier(sig, h, nil) == nil &&
				predicateTypeOf(sig) == st.predicateType
		})
		if err != nil {
			return name.Tag{}, nil, err
		}
		if done {
			continue
		}
		att, err := s.signStatement(ctx, d, st)
		if err != nil {
			return name.Tag{}, nil, fmt.Errorf("attesting %s: %w", st.predicateType, err)
		}
		if se, err = mutate.AttachAttestationToEntity(se, att); err != nil {
			return name.Tag{}, nil, err
		}
		added = append(added, st.predicateType)
	}
	if len(added) == 0 {
		return attTag, nil, nil
	}
	if err := ociremote.WriteAttestations(d.Repository, se, ociOpts...); err != nil {
		return name.Tag{}, nil, fmt.Errorf("pushing the attestations %s: %w", attTag, err)
	}
	return attTag, added, nil
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

// hasOwn reports whether one of sigs was made by this identity and passes ok.
func (s *signer) hasOwn(ctx context.Context, sigs oci.Signatures, ok func(oci.Signature, signature.Verifier) bool) (bool, error) {
	list, err := sigs.Get()
	if err != nil {
		return false, err
	}
	for _, sig := range list {
		v, err := s.id.verifierFor(ctx, sig)
		if err != nil {
			return false, err
		}
		if v != nil && ok(sig, v) {
			return true, nil
		}
	}
	return false, nil
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
