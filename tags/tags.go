// Package tags is the one vocabulary of image tags: which tags a release
// moves (Policy), the spaces no release tag may take, the class of any tag a
// registry holds (Of), and the order of releases that lets a shared tag move
// forward only (Key). Release, prune and the change report all ask it.
package tags

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/mod/semver"
)

// Tag is a tag a release moves.
type Tag struct {
	Name string
	// Owned tags name this release alone (sha-<commit>, the git tag,
	// pr-<N>, --tag): they move even from a newer index. The others are
	// shared by releases and only ever move forward.
	Owned bool
	// Built tags say when and from which commit an index was built (the
	// date and sha-<commit>). They go on an index this run assembled, never
	// on a published index it reuses unchanged: that index was built on
	// another day, at another commit, and its signature says which.
	Built bool
}

// Names returns the tag names, in order.
func Names(tags []Tag) []string {
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = t.Name
	}
	return out
}

// Policy decides which tags a release moves.
type Policy struct {
	// Version of the agent, tagged through Safe.
	Version string
	// Commit of this repository, tagged as sha-<first 7>; empty when unknown.
	Commit string
	// Now gives the UTC date tag YYYY-MM-DD.
	Now time.Time
	// Extra tags from --tag.
	Extra []string
	// GitTag is the git tag being released, e.g. v1.2.3.
	GitTag string
	// Preview is the pull request this release previews: only pr-<N>
	// moves, never latest, a version or a date. Zero for a release.
	Preview int
}

// Class is the kind of a tag, read from its name alone.
type Class string

// The classes of tags (retention.Rules says what each keeps, and in which
// order a version carrying several is attributed to them).
const (
	Latest Class = "latest"
	// Version is every tag no other class claims: the agent's version, a
	// semantic version and its series, the git tag and --tag extras. Their
	// names alone cannot tell them apart, and none of them is ever pruned.
	Version  Class = "version"
	Dated    Class = "dated"
	SHA      Class = "sha"
	Staging  Class = "staging"
	Preview  Class = "preview"
	Attached Class = "attached"
)

var (
	validRE  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	commitRE = regexp.MustCompile(`^[0-9a-f]{7,64}$`)
	datedRE  = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	shaRE    = regexp.MustCompile(`^sha-[0-9a-f]{7,40}$`)
	prRE     = regexp.MustCompile(`^pr-[0-9]+$`)
	notTagRE = regexp.MustCompile(`[^A-Za-z0-9_.-]`)
	// Cosign's tag-based storage, sha256-<hex>.sig/.att/.sbom, and the OCI
	// referrers tag schema's fallback sha256-<hex>: about another manifest,
	// never a release of their own.
	attachedRE = regexp.MustCompile(`^sha256-([0-9a-f]{64})(\.(sig|att|sbom))?$`)
)

// Reserved tag spaces: cosign stores signatures and attestations under
// sha256-<hex>[.sig|.att], and split mode stages per-arch images under
// staging-<key>-<os>-<arch>. A release tag there could overwrite them.
var reserved = []string{"sha256-", "staging-"}

// Of returns the class of a tag. An extra tag releases move (--tag) is a
// version whatever its shape, so one that looks like a date, sha-<commit> or
// pr-<N> is never pruned as one.
func Of(tag string, extra ...string) Class {
	switch {
	case slices.Contains(extra, tag):
		return Version
	case tag == "latest":
		return Latest
	case IsDated(tag):
		return Dated
	case shaRE.MatchString(tag):
		return SHA
	case strings.HasPrefix(tag, "staging-") && len(tag) > len("staging-"):
		return Staging
	case prRE.MatchString(tag):
		return Preview
	case attachedRE.MatchString(tag):
		return Attached
	}
	return Version
}

// IsDated reports whether tag is a release date (YYYY-MM-DD, a real date).
func IsDated(tag string) bool {
	_, err := time.Parse(time.DateOnly, tag)
	return err == nil && datedRE.MatchString(tag)
}

// AttachedTo returns the digest of the manifest an attached tag (a cosign
// signature, attestation or SBOM, or a referrers fallback tag) is about.
func AttachedTo(tag string) (string, bool) {
	m := attachedRE.FindStringSubmatch(tag)
	if m == nil {
		return "", false
	}
	return "sha256:" + m[1], true
}

// CommitTag is the tag that names a commit's release: "sha-" and the first seven
// hex digits of the commit, or "" for a commit too short to give them.
func CommitTag(commit string) string {
	if len(commit) < 7 {
		return ""
	}
	return "sha-" + commit[:7]
}

// StagingTag is the tag a split-mode build records its per-arch image
// under: the same key and platform always give the same tag. It keeps the
// image from being pruned until merge; merge trusts the build record's
// digest, never the tag.
func StagingTag(key string, p v1.Platform) string {
	return Safe(fmt.Sprintf("staging-%s-%s-%s", key, p.OS, p.Architecture))
}

// Validate says why t cannot be a release tag: not a valid OCI tag, or in a
// reserved space.
func Validate(t string) error {
	if !validRE.MatchString(t) {
		return fmt.Errorf("%q is not a valid tag: use letters, digits, '_', '.' and '-', at most 128, not starting with '.' or '-'", t)
	}
	for _, r := range reserved {
		if strings.HasPrefix(t, r) {
			return fmt.Errorf("%q is in the reserved tag space %s*, which holds cosign's signatures and split mode's staged images: choose another tag", t, r)
		}
	}
	return nil
}

// Tags returns the tags of a release, without duplicates:
//
//   - latest, the agent's version, the UTC date, and sha-<short> when the
//     commit is known;
//   - for a git tag, the tag itself (v1.2.3), and when it is a semantic
//     version the version (1.2.3), its minor series (1.2) and its major
//     series (1, except for 0.x, where every minor may break). A
//     pre-release (v1.2.3-rc.1) is tagged as itself only, and does not move
//     latest: it is not what latest or a series promises;
//   - the extra tags.
//
// A preview of pull request N moves pr-<N> and nothing else.
//
// Every tag is checked here, before any moves: an extra tag or a commit that
// cannot be a tag is an error naming it, and so is a version whose tag (see
// Safe) lands in a reserved space.
func (p Policy) Tags() ([]Tag, error) {
	if p.Commit != "" && !commitRE.MatchString(p.Commit) {
		return nil, fmt.Errorf("commit: %q is not a git commit id: want 7 to 64 lowercase hex digits", p.Commit)
	}
	switch {
	case p.Preview < 0:
		return nil, &PolicyError{"Preview", fmt.Errorf("%d: want the pull request's number", p.Preview)}
	case p.Preview > 0 && (p.GitTag != "" || len(p.Extra) > 0):
		return nil, &PolicyError{"Preview", fmt.Errorf("%d moves only pr-%d, never a release's tags: drop the git tag and the extra tags", p.Preview, p.Preview)}
	case p.Preview > 0:
		return []Tag{{Name: fmt.Sprintf("pr-%d", p.Preview), Owned: true}}, nil
	}
	git, prerelease, err := gitTags(p.GitTag)
	if err != nil {
		return nil, err
	}
	var tags []Tag
	if !prerelease {
		tags = append(tags, Tag{Name: "latest"})
	}
	if v := Safe(p.Version); v != "" {
		if err := Validate(v); err != nil {
			return nil, fmt.Errorf("version %q gives no usable tag: %w", p.Version, err)
		}
		tags = append(tags, Tag{Name: v})
	}
	tags = append(tags, Tag{Name: p.Now.UTC().Format(time.DateOnly), Built: true})
	if p.Commit != "" {
		tags = append(tags, Tag{Name: CommitTag(p.Commit), Owned: true, Built: true})
	}
	tags = append(tags, git...)
	for _, t := range p.Extra {
		if err := Validate(t); err != nil {
			return nil, &PolicyError{"Extra", err}
		}
		tags = append(tags, Tag{Name: t, Owned: true})
	}
	var out []Tag
	for _, t := range tags {
		i := slices.IndexFunc(out, func(o Tag) bool { return o.Name == t.Name })
		if i < 0 {
			out = append(out, t)
			continue
		}
		// A tag both shared and owned (--tag latest) is shared: it still
		// never moves backwards. Asked for by name (--tag), it goes on a
		// reused index too.
		out[i].Owned = out[i].Owned && t.Owned
		out[i].Built = out[i].Built && t.Built
	}
	return out, nil
}

// gitTags are the tags of the git tag name, as Tags says; a semantic
// version is semver.org's, with or without the leading v.
func gitTags(name string) (tags []Tag, prerelease bool, err error) {
	if name == "" {
		return nil, false, nil
	}
	self := Safe(name)
	if err := Validate(self); err != nil {
		return nil, false, &PolicyError{"GitTag", fmt.Errorf("%q gives no usable tag: %w", name, err)}
	}
	tags = []Tag{{Name: self, Owned: true}}
	// x/mod/semver also takes v1.2 and v1 as short for v1.2.0 and v1.0.0:
	// only a full version, as written, names a release's series.
	v := "v" + strings.TrimPrefix(name, "v")
	if !semver.IsValid(v) || semver.Canonical(v)+semver.Build(v) != v {
		return tags, false, nil
	}
	tags = append(tags, Tag{Name: Safe(v[1:])})
	if semver.Prerelease(v) != "" {
		return tags, true, nil
	}
	tags = append(tags, Tag{Name: semver.MajorMinor(v)[1:]})
	if major := semver.Major(v)[1:]; major != "0" {
		tags = append(tags, Tag{Name: major})
	}
	return tags, false, nil
}

// Safe is the one rule that turns a version into a tag: every character a
// tag cannot hold (anything but letters, digits, '_', '.' and '-', such as
// '+' or '/') becomes '-', a leading '.' or '-' becomes '_', and the result
// is cut at 128 characters. An empty version gives no tag.
func Safe(version string) string {
	s := notTagRE.ReplaceAllString(version, "-")
	if s != "" && (s[0] == '.' || s[0] == '-') {
		s = "_" + s[1:]
	}
	return s[:min(len(s), 128)]
}

// PolicyError is a field of a Policy (this one, or prune's retention
// policy) with a value that gives no usable tag or plan, named as the
// Policy names it; a command line words it by its flag.
type PolicyError struct {
	Field string
	Err   error
}

func (e *PolicyError) Error() string { return e.Field + " " + e.Err.Error() }
func (e *PolicyError) Unwrap() error { return e.Err }
