// Package changes owns the change report (record.Changes): for one agent,
// the version, each platform's size, the store paths added and removed and
// the flake inputs moved between two releases, read from their indexes,
// images and CycloneDX SBOM and SLSA provenance attestations, in the
// registry or in what the caller just published.
package changes

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/oci"

	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/sign"
)

// Release is one side of a comparison: an agent's index (or a single image
// manifest). What the caller does not hold is read from the registry: the
// images and the version when Images is nil, an image's attestations when
// its Attestations are nil.
type Release struct {
	Ref     name.Digest
	Tag     string // what the caller named it by, if a tag
	Version string
	Images  []Image
}

// Image is one per-arch image of a release.
type Image struct {
	Platform     v1.Platform
	Digest       v1.Hash
	Size         int64           // what pulling it downloads (internal/pullsize)
	Attestations []oci.Signature // its in-toto attestations, as cosign stores them

	// What the attestations say; nil when there is no such attestation.
	sbom *sbom
	prov *provenance
}

// Options say how Compare reads what it is not given, and what it flags.
type Options struct {
	Remote []remote.Option // the caller's one client for the registry
	// Verifier, when set, reads only the attestations it verifies;
	// without it they are read unverified and the report says so.
	Verifier *sign.AttestationVerifier
	// SizeThreshold flags every platform that grew by more than this
	// fraction of its previous size (0.1 for 10%); nil flags none.
	SizeThreshold *float64
}

// Compare reports what changed from one release of an agent to the next,
// usually two in the same repository. Attestations missing on either side
// are notes in the report; attestations that do not verify, when
// verification was asked for, are an error.
func Compare(ctx context.Context, from, to Release, o Options) (*record.Changes, error) {
	if t := o.SizeThreshold; t != nil && *t < 0 {
		return nil, fmt.Errorf("a size threshold of %g%% would flag shrinking images: give 0%% or more", *t*100)
	}
	before, err := read(ctx, from, o)
	if err != nil {
		return nil, err
	}
	after, err := read(ctx, to, o)
	if err != nil {
		return nil, err
	}
	return compare(&before, &after, o.Verifier != nil, o.SizeThreshold), nil
}

// Between compares two releases in one repository, each named by a tag or
// a digest; a nil from is the release before to (see previous).
func Between(ctx context.Context, from, to name.Reference, o Options) (*record.Changes, error) {
	toDigest, err := resolve(ctx, to, o.Remote)
	if err != nil {
		return nil, err
	}
	before := Release{Tag: tagOf(from)}
	if from == nil {
		before.Ref, before.Tag, err = previous(ctx, toDigest, o.Remote)
	} else {
		before.Ref, err = resolve(ctx, from, o.Remote)
	}
	if err != nil {
		return nil, err
	}
	return Compare(ctx, before, Release{Ref: toDigest, Tag: tagOf(to)}, o)
}

// ParseRef names a release of repo by one of its tags (latest, 0.70.6,
// 2026-05-01) or a sha256: digest.
func ParseRef(repo name.Repository, ref string) (name.Reference, error) {
	if strings.HasPrefix(ref, "sha256:") {
		if _, err := name.NewDigest(repo.String() + "@" + ref); err != nil {
			return nil, fmt.Errorf("%s is not a digest: want sha256: and 64 hex digits", ref)
		}
		return repo.Digest(ref), nil
	}
	if strings.ContainsAny(ref, ":/@") {
		return nil, fmt.Errorf("%s: give a tag of %s (such as latest or 2026-05-01) or a sha256: digest, not a full reference", ref, repo)
	}
	if _, err := name.NewTag(repo.String() + ":" + ref); err != nil {
		return nil, fmt.Errorf("%s is not a valid tag: %w", ref, err)
	}
	return repo.Tag(ref), nil
}

func tagOf(ref name.Reference) string {
	if t, ok := ref.(name.Tag); ok {
		return t.TagStr()
	}
	return ""
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
