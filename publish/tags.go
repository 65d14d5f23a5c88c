package publish

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Tag is a tag a release moves.
type Tag struct {
	Name string
	// Owned tags name this release alone (sha-<commit>, the git tag, a
	// pull request's pr-<N> and --tag): they move even from a newer index.
	// The others (latest, the agent's version, the date, and a semantic
	// version's X.Y.Z, X.Y and X) are shared by releases and only ever move
	// forward.
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

// TagPolicy decides which tags a release moves.
type TagPolicy struct {
	// Version of the agent, tagged through SafeTag.
	Version string
	// Commit of this repository, tagged as sha-<first 7>; empty when unknown.
	Commit string
	// Now gives the UTC date tag YYYY-MM-DD.
	Now time.Time
	// Extra tags from --tag.
	Extra []string
	// GitTag is the git tag being released, e.g. v1.2.3: it is a tag
	// itself, and when it is a semantic version so are 1.2.3, 1.2 and 1.
	GitTag string
	// Preview is the pull request this release previews: only pr-<N>
	// moves, never latest, a version or a date. Zero for a release.
	Preview int
}

var (
	tagRE    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	commitRE = regexp.MustCompile(`^[0-9a-f]{7,64}$`)
	// semverRE is a semantic version (semver.org's grammar), with an
	// optional leading v: major, minor, patch, pre-release.
	semverRE = regexp.MustCompile(`^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)` +
		`(?:-((?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*))?` +
		`(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$`)
)

// Reserved tag spaces: cosign stores signatures and attestations under
// sha256-<hex>[.sig|.att], and split mode stages per-arch images under
// staging-<key>-<os>-<arch>. A release tag there could overwrite them.
var reserved = []string{"sha256-", "staging-"}

// ValidateTag says why t cannot be a release tag: not a valid OCI tag, or
// in a reserved space.
func ValidateTag(t string) error {
	if !tagRE.MatchString(t) {
		return fmt.Errorf("%q is not a valid tag: use letters, digits, '_', '.' and '-', at most 128, not starting with '.' or '-'", t)
	}
	for _, r := range reserved {
		if strings.HasPrefix(t, r) {
			return fmt.Errorf("%q is in the reserved tag space %s*, which holds cosign's signatures and split mode's staged images: choose another tag", t, r)
		}
	}
	return nil
}

// ValidateCommit says why c cannot name a commit in a sha- tag.
func ValidateCommit(c string) error {
	if c != "" && !commitRE.MatchString(c) {
		return fmt.Errorf("%q is not a git commit id: want 7 to 64 lowercase hex digits", c)
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
// SafeTag) lands in a reserved space.
func (p TagPolicy) Tags() ([]Tag, error) {
	if err := ValidateCommit(p.Commit); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	switch {
	case p.Preview < 0:
		return nil, fmt.Errorf("--preview %d: want the pull request's number", p.Preview)
	case p.Preview > 0 && (p.GitTag != "" || len(p.Extra) > 0):
		return nil, fmt.Errorf("--preview %d moves only pr-%d, never a release's tags: drop --git-tag and --tag", p.Preview, p.Preview)
	case p.Preview > 0:
		return []Tag{{Name: fmt.Sprintf("pr-%d", p.Preview), Owned: true}}, nil
	}
	git, err := gitTags(p.GitTag)
	if err != nil {
		return nil, err
	}
	var tags []Tag
	if !git.prerelease {
		tags = append(tags, Tag{Name: "latest"})
	}
	if v := SafeTag(p.Version); v != "" {
		if err := ValidateTag(v); err != nil {
			return nil, fmt.Errorf("version %q gives no usable tag: %w", p.Version, err)
		}
		tags = append(tags, Tag{Name: v})
	}
	tags = append(tags, Tag{Name: p.Now.UTC().Format("2006-01-02"), Built: true})
	if p.Commit != "" {
		tags = append(tags, Tag{Name: "sha-" + p.Commit[:7], Owned: true, Built: true})
	}
	tags = append(tags, git.tags...)
	for _, t := range p.Extra {
		if err := ValidateTag(t); err != nil {
			return nil, fmt.Errorf("--tag %w", err)
		}
		tags = append(tags, Tag{Name: t, Owned: true})
	}
	seen := map[string]int{}
	out := tags[:0]
	for _, t := range tags {
		if i, ok := seen[t.Name]; ok {
			// A tag both shared and owned (--tag latest) is shared: it still
			// never moves backwards.
			out[i].Owned = out[i].Owned && t.Owned
			// Asked for by name (--tag), it goes on a reused index too.
			out[i].Built = out[i].Built && t.Built
			continue
		}
		seen[t.Name] = len(out)
		out = append(out, t)
	}
	return out, nil
}

// gitRelease is what a git tag adds to a release's tags.
type gitRelease struct {
	tags       []Tag
	prerelease bool
}

// gitTags are the tags of the git tag name: the tag itself, owned like
// sha- (it names this release alone), then, for a semantic version, the
// version and its series, shared and moving only forward.
func gitTags(name string) (gitRelease, error) {
	if name == "" {
		return gitRelease{}, nil
	}
	self := SafeTag(name)
	if err := ValidateTag(self); err != nil {
		return gitRelease{}, fmt.Errorf("--git-tag %q gives no usable tag: %w", name, err)
	}
	out := gitRelease{tags: []Tag{{Name: self, Owned: true}}}
	m := semverRE.FindStringSubmatch(name)
	if m == nil {
		return out, nil
	}
	major, minor, pre := m[1], m[2], m[4]
	out.tags = append(out.tags, Tag{Name: SafeTag(strings.TrimPrefix(name, "v"))})
	if pre != "" {
		out.prerelease = true
		return out, nil
	}
	out.tags = append(out.tags, Tag{Name: major + "." + minor})
	if major != "0" {
		out.tags = append(out.tags, Tag{Name: major})
	}
	return out, nil
}

// SafeTag is the one rule that turns a version into a tag: every character
// a tag cannot hold (anything but letters, digits, '_', '.' and '-', such as
// '+' or '/') becomes '-', a leading '.' or '-' becomes '_', and the result
// is cut at 128 characters. An empty version gives no tag.
func SafeTag(version string) string {
	var b strings.Builder
	for i, r := range version {
		ok := r == '_' || r == '.' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !ok || (i == 0 && (r == '.' || r == '-')) {
			r = '-'
			if i == 0 {
				r = '_'
			}
		}
		b.WriteRune(r)
	}
	s := b.String()
	if len(s) > 128 {
		s = s[:128]
	}
	return s
}
