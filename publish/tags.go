package publish

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// TagPolicy decides which tags a release moves.
type TagPolicy struct {
	// Version of the agent, tagged as is (made tag-safe).
	Version string
	// Commit of this repository, tagged as sha-<first 7>; empty when unknown.
	Commit string
	// Now gives the UTC date tag YYYY-MM-DD.
	Now time.Time
	// Extra tags from --tag.
	Extra []string
}

var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// Tags returns latest, the version, the date, sha-<short> when the commit is
// known, and the extra tags, without duplicates. An extra tag that is not a
// valid tag is an error naming it.
func (p TagPolicy) Tags() ([]string, error) {
	tags := []string{"latest"}
	if v := SafeTag(p.Version); v != "" {
		tags = append(tags, v)
	}
	tags = append(tags, p.Now.UTC().Format("2006-01-02"))
	if len(p.Commit) >= 7 {
		tags = append(tags, "sha-"+p.Commit[:7])
	}
	for _, t := range p.Extra {
		if !tagRE.MatchString(t) {
			return nil, fmt.Errorf("--tag %q is not a valid tag: use letters, digits, '_', '.' and '-', at most 128, not starting with '.' or '-'", t)
		}
		tags = append(tags, t)
	}
	seen := map[string]bool{}
	out := tags[:0]
	for _, t := range tags {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out, nil
}

// SafeTag turns a version into a valid tag: characters a tag cannot hold
// (such as '+') become '-'.
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
