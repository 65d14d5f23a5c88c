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
)

// Report is what changed for one agent from one release to the next.
type Report struct {
	Agent string  `json:"agent"`
	From  Release `json:"from"`
	To    Release `json:"to"`
	// Verified is true when every attestation read was checked against the
	// signer's key or identity; false when they were read unverified.
	Verified bool `json:"verified"`
	// SizeThreshold is the growth (a fraction: 0.1 is 10%) above which a
	// platform is flagged; nil when none was set.
	SizeThreshold *float64         `json:"sizeThreshold,omitempty"`
	Platforms     []PlatformChange `json:"platforms"`
	// Inputs are the flake inputs whose pin differs, by name.
	Inputs []InputChange `json:"inputs,omitempty"`
	// InputsCompared is false when either release lacks a provenance.
	InputsCompared bool `json:"inputsCompared"`
	// Notes say what could not be compared and why (a release without an
	// SBOM or provenance, say).
	Notes []string `json:"notes,omitempty"`
}

// Release is one side of the comparison.
type Release struct {
	Repository string `json:"repository"`
	// Digest is the agent's index (or its single image manifest).
	Digest string `json:"digest"`
	// Tag is what the caller named it by, when it named a tag.
	Tag     string `json:"tag,omitempty"`
	Version string `json:"version,omitempty"`
}

// Reference is repository@digest.
func (r Release) Reference() string { return r.Repository + "@" + r.Digest }

// Label is the tag, else the short digest.
func (r Release) Label() string {
	if r.Tag != "" {
		return r.Tag
	}
	return shortDigest(r.Digest)
}

// PlatformChange is one platform in either release.
type PlatformChange struct {
	Platform string `json:"platform"`
	// From and To are nil where the platform is in one release only.
	From *Image `json:"from,omitempty"`
	To   *Image `json:"to,omitempty"`
	// SizeDelta is To.Size - From.Size in bytes, and SizeGrowth that as a
	// fraction of From.Size; both 0 unless the platform is in both.
	SizeDelta  int64   `json:"sizeDelta"`
	SizeGrowth float64 `json:"sizeGrowth"`
	// OverThreshold marks growth above the report's SizeThreshold.
	OverThreshold bool `json:"overThreshold,omitempty"`
	// Added and Removed are the store paths of one image only, by path;
	// nil when either image has no SBOM.
	Added   []StorePath `json:"added,omitempty"`
	Removed []StorePath `json:"removed,omitempty"`
	// StorePathsCompared is false when either image lacks an SBOM.
	StorePathsCompared bool `json:"storePathsCompared"`
}

// Image is one per-arch image of a release.
type Image struct {
	Digest string `json:"digest"`
	// Size is what a pull downloads: the manifest, the config and the
	// compressed layers, in bytes (release.json's per-platform size).
	Size int64 `json:"size"`
}

// StorePath is one top-level /nix/store entry an SBOM lists. Path is empty
// for a component the SBOM names only by name and version.
type StorePath struct {
	Path    string `json:"path,omitempty"`
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// key identifies a store path in a comparison: its path, else its name and
// version.
func (s StorePath) key() string {
	if s.Path != "" {
		return s.Path
	}
	return s.Name + "@" + s.Version
}

// InputChange is a flake input whose pin moved; From or To is the zero Pin
// when the input is in one release only.
type InputChange struct {
	Name string `json:"name"`
	From Pin    `json:"from"`
	To   Pin    `json:"to"`
}

// Pin is how a provenance records a flake input: what Nix fetched.
type Pin struct {
	Rev     string `json:"rev,omitempty"`
	NarHash string `json:"narHash,omitempty"`
	// Override is the public form of the --override-input that replaced it.
	Override string `json:"override,omitempty"`
}

// String is the revision if there is one, else the NAR hash.
func (p Pin) String() string {
	switch {
	case p.Rev != "":
		return p.Rev
	case p.NarHash != "":
		return p.NarHash
	case p.Override != "":
		return "override " + p.Override
	}
	return "(none)"
}

// VersionChanged reports whether the agent's version differs.
func (r *Report) VersionChanged() bool { return r.From.Version != r.To.Version }

// Same reports whether both sides are the very same release.
func (r *Report) Same() bool { return r.From.Digest == r.To.Digest }

// OverThreshold lists the platforms whose growth is above the threshold.
func (r *Report) OverThreshold() []PlatformChange {
	var out []PlatformChange
	for _, p := range r.Platforms {
		if p.OverThreshold {
			out = append(out, p)
		}
	}
	return out
}

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
func Compare(ctx context.Context, from, to name.Digest, opts ...Option) (*Report, error) {
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

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
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
