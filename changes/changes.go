// Package changes owns the change report of a release: for one agent, what
// differs between two published releases. It reads only what the registry
// holds (the indexes, the per-arch manifests, and the CycloneDX SBOM and
// SLSA provenance attestations on each per-arch image) and compares them:
// the version, each platform's size, the store paths added and removed,
// and the flake inputs that moved.
//
// Compare builds the Report; WriteText renders it for a terminal, its JSON
// form goes into release.json, and gh renders it as Markdown.
package changes

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	ghauthn "github.com/google/go-containerregistry/pkg/authn/github"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/sigstore/cosign/v2/pkg/oci"

	"github.com/nothingnesses/agent-images/internal/transport"
	"github.com/nothingnesses/agent-images/record"
)

// Verifier returns the attestations of a manifest that verify under some
// policy (a key, a keyless identity): sign.AttestationVerifier is one.
type Verifier interface {
	Attestations(ctx context.Context, d name.Digest) ([]oci.Signature, error)
}

type options struct {
	remoteOpts []remote.Option
	verifier   Verifier
	threshold  *float64
	fromTag    string
	toTag      string
}

// Option configures Compare and Previous.
type Option func(*options) error

// WithRemoteOptions sets how the registry is reached (auth, transport). The
// default uses the docker config and GITHUB_TOKEN keychains over the shared
// retrying transport.
func WithRemoteOptions(opts ...remote.Option) Option {
	return func(o *options) error { o.remoteOpts = append(o.remoteOpts, opts...); return nil }
}

// WithVerifier reads only attestations that v verifies (a key or keyless
// identity, sign.NewAttestationVerifier); without it they are read
// unverified and the report says so.
func WithVerifier(v Verifier) Option {
	return func(o *options) error {
		if v == nil {
			return errors.New("WithVerifier: nil verifier")
		}
		o.verifier = v
		return nil
	}
}

// WithSizeThreshold flags every platform that grew by more than fraction
// of its previous size (0.1 for 10%).
func WithSizeThreshold(fraction float64) Option {
	return func(o *options) error {
		if fraction < 0 {
			return fmt.Errorf("a size threshold of %g%% would flag shrinking images: give 0%% or more", fraction*100)
		}
		o.threshold = &fraction
		return nil
	}
}

// WithTags records the tags the caller named the two releases by, for the
// report's labels; either may be empty.
func WithTags(from, to string) Option {
	return func(o *options) error { o.fromTag, o.toTag = from, to; return nil }
}

func newOptions(ctx context.Context, opts []Option) (*options, error) {
	o := &options{}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	base := []remote.Option{
		remote.WithTransport(transport.New()),
		remote.WithAuthFromKeychain(authn.NewMultiKeychain(authn.DefaultKeychain, ghauthn.Keychain)),
	}
	// Clipped, so that the goroutines that each append their own context
	// never write into a shared backing array.
	o.remoteOpts = slices.Clip(append(append(base, o.remoteOpts...), remote.WithContext(ctx)))
	return o, nil
}

// Compare reads the releases from and to of one agent from their registry
// and reports what changed. Both are digests of an agent's index (or of a
// single image manifest), usually in the same repository. Attestations
// missing on either side are notes in the report; attestations that do not
// verify, when verification was asked for, are an error.
func Compare(ctx context.Context, from, to name.Digest, opts ...Option) (*record.Changes, error) {
	o, err := newOptions(ctx, opts)
	if err != nil {
		return nil, err
	}
	before, err := read(ctx, from, o)
	if err != nil {
		return nil, err
	}
	after, err := read(ctx, to, o)
	if err != nil {
		return nil, err
	}
	before.tag, after.tag = o.fromTag, o.toTag
	return compare(before, after, o.verifier != nil, o.threshold), nil
}

// ParseThreshold reads a size-growth threshold given as a percentage
// ("10%", "2.5%") into a fraction.
func ParseThreshold(s string) (float64, error) {
	num, ok := strings.CutSuffix(strings.TrimSpace(s), "%")
	if !ok {
		return 0, fmt.Errorf("size threshold %q: give a percentage of the previous size, such as 10%%", s)
	}
	pct, err := strconv.ParseFloat(num, 64)
	if err != nil || pct < 0 || math.IsInf(pct, 0) || math.IsNaN(pct) {
		return 0, fmt.Errorf("size threshold %q: give a percentage of 0%% or more, such as 10%%", s)
	}
	return pct / 100, nil
}
