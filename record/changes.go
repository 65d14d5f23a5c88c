package record

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Changes is what changed for one agent from one release to the next.
type Changes struct {
	Agent string   `json:"agent"`
	From  Compared `json:"from"`
	To    Compared `json:"to"`
	// Verified is true when every attestation read was checked against the
	// signer's key or identity; false when they were read unverified.
	Verified bool `json:"verified"`
	// SizeThreshold is the growth (a fraction: 0.1 is 10%) above which a
	// platform is flagged; nil when none was set.
	SizeThreshold *float64         `json:"sizeThreshold,omitempty"`
	Platforms     []PlatformChange `json:"platforms"`
	Inputs        []InputChange    `json:"inputs,omitempty"` // by name, those whose pin differs
	// InputsCompared is false when either release lacks a provenance.
	InputsCompared bool     `json:"inputsCompared"`
	Notes          []string `json:"notes,omitempty"` // what could not be compared, and why
}

// Compared is one side of the comparison.
type Compared struct {
	Repository string `json:"repository"`
	Digest     string `json:"digest"`        // the index, or a single image manifest
	Tag        string `json:"tag,omitempty"` // when the caller named it by a tag
	Version    string `json:"version,omitempty"`
}

// Reference is repository@digest.
func (r Compared) Reference() string { return r.Repository + "@" + r.Digest }

// Label is the tag, else the short digest.
func (r Compared) Label() string { return cmp.Or(r.Tag, ShortDigest(r.Digest)) }

// PlatformChange is one platform in either release.
type PlatformChange struct {
	Platform string `json:"platform"`
	// From and To are nil where the platform is in one release only.
	From *ImageSize `json:"from,omitempty"`
	To   *ImageSize `json:"to,omitempty"`
	// SizeDelta is To.Size - From.Size in bytes, and SizeGrowth that as a
	// fraction of From.Size; both 0 unless the platform is in both.
	SizeDelta     int64   `json:"sizeDelta"`
	SizeGrowth    float64 `json:"sizeGrowth"`
	OverThreshold bool    `json:"overThreshold,omitempty"` // growth above SizeThreshold
	// Added and Removed are the store paths of one image only; both nil,
	// and StorePathsCompared false, when either image has no SBOM.
	Added              []StorePath `json:"added,omitempty"`
	Removed            []StorePath `json:"removed,omitempty"`
	StorePathsCompared bool        `json:"storePathsCompared"`
}

// ImageSize is one per-arch image of a release.
type ImageSize struct {
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

// Key identifies a store path in a comparison: its path, else name@version.
func (s StorePath) Key() string { return cmp.Or(s.Path, s.Name+"@"+s.Version) }

// InputChange is a flake input whose pin moved; From or To is the zero Pin
// when the input is in one release only.
type InputChange struct {
	Name string `json:"name"`
	From Pin    `json:"from"`
	To   Pin    `json:"to"`
}

// Pin is how a provenance records a flake input: what Nix fetched.
type Pin struct {
	Rev      string `json:"rev,omitempty"`
	NarHash  string `json:"narHash,omitempty"`
	Override string `json:"override,omitempty"` // the public form of the --override-input that replaced it
}

// String is the revision, else the NAR hash, else the override.
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
func (r *Changes) VersionChanged() bool { return r.From.Version != r.To.Version }

// Same reports whether both sides are the very same release.
func (r *Changes) Same() bool { return r.From.Digest == r.To.Digest }

// OverThreshold lists the platforms whose growth is above the threshold.
func (r *Changes) OverThreshold() []PlatformChange {
	return slices.DeleteFunc(slices.Clone(r.Platforms), func(p PlatformChange) bool { return !p.OverThreshold })
}

// ShortDigest is a digest cut to its algorithm and first 12 hex digits.
func ShortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

// Headline is the agent and its version change in one line.
func (r *Changes) Headline() string {
	if r.VersionChanged() {
		return fmt.Sprintf("%s %s -> %s", r.Agent, cmp.Or(r.From.Version, unknownVersion), cmp.Or(r.To.Version, unknownVersion))
	}
	return fmt.Sprintf("%s %s (version unchanged)", r.Agent, cmp.Or(r.To.Version, unknownVersion))
}

// Evidence says whether the attestations were verified.
func (r *Changes) Evidence() string {
	if r.Verified {
		return "verified against the given key or identity"
	}
	return "read unverified: their signatures were not checked"
}

// SizeChange is the delta and growth, "+301.2 KiB (+23.2%)"; "new" or
// "dropped" for a platform in one release only.
func (p PlatformChange) SizeChange() string {
	switch {
	case p.From == nil:
		return "new"
	case p.To == nil:
		return "dropped"
	case p.SizeDelta == 0:
		return "same size"
	}
	change := "+" + HumanBytes(p.SizeDelta)
	if p.SizeDelta < 0 {
		change = "-" + HumanBytes(-p.SizeDelta)
	}
	if p.From.Size == 0 {
		return change
	}
	return fmt.Sprintf("%s (%+.1f%%)", change, p.SizeGrowth*100)
}

// ThresholdString is the report's threshold as a percentage, "10%".
func (r *Changes) ThresholdString() string {
	if r.SizeThreshold == nil {
		return ""
	}
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", *r.SizeThreshold*100), "0"), ".") + "%"
}

// PathChange is one store path a platform lost or gained.
type PathChange struct {
	Added bool
	StorePath
}

// PathChanges merges Removed and Added by name, so that an updated package
// reads as its old entry followed by its new one.
func (p PlatformChange) PathChanges() []PathChange {
	out := make([]PathChange, 0, len(p.Removed)+len(p.Added))
	for _, s := range p.Removed {
		out = append(out, PathChange{false, s})
	}
	for _, s := range p.Added {
		out = append(out, PathChange{true, s})
	}
	slices.SortStableFunc(out, func(a, b PathChange) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// String is the store path, or the name and version when there is no path.
func (s StorePath) String() string { return cmp.Or(s.Path, strings.TrimSpace(s.Name+" "+s.Version)) }

const unknownVersion = "(version unknown)"

// HumanBytes is n in B, KiB, MiB or GiB with one decimal.
func HumanBytes(n int64) string {
	for i, unit := range []string{"GiB", "MiB", "KiB"} {
		if div := int64(1) << (30 - 10*i); n >= div {
			return fmt.Sprintf("%.1f %s", float64(n)/float64(div), unit)
		}
	}
	return fmt.Sprintf("%d B", n)
}
