package gh

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"
)

// RetentionPolicy is what prune is asked to keep. It is the caller's choice
// and is never changed while planning.
type RetentionPolicy struct {
	// KeepDated is how many dated releases (YYYY-MM-DD tags), newest first,
	// are kept. Their span is the window: from 00:00 UTC of the oldest kept
	// date on (all time, while there are fewer dates than KeepDated).
	KeepDated int
	// PreviewMaxAge is how long a pr-<N> preview tag keeps its manifest.
	PreviewMaxAge time.Duration
	// StagingGrace is how long a split-mode staging tag keeps its per-arch
	// image whether or not it has been merged.
	StagingGrace time.Duration
	// Now is when the plan is made; every age is measured from it.
	Now time.Time
}

// DefaultRetention is the policy `release prune` applies without flags.
func DefaultRetention(now time.Time) RetentionPolicy {
	return RetentionPolicy{KeepDated: 30, PreviewMaxAge: 14 * 24 * time.Hour, StagingGrace: 24 * time.Hour, Now: now}
}

func (p RetentionPolicy) validate() error {
	switch {
	case p.KeepDated < 1:
		return fmt.Errorf("keeping %d dated tags would delete today's release: keep at least 1", p.KeepDated)
	case p.PreviewMaxAge <= 0:
		return fmt.Errorf("preview max age %s: want a positive age such as 14d", p.PreviewMaxAge)
	case p.StagingGrace <= 0:
		return fmt.Errorf("staging grace %s: want a positive age such as 24h", p.StagingGrace)
	case p.Now.IsZero():
		return fmt.Errorf("retention policy has no current time to measure ages from")
	}
	return nil
}

// TagClass is one kind of tag and the rule that decides whether a tag of
// that kind keeps the manifest it points at. RetentionClasses, in order, is
// the whole policy: the planner applies it, and the dry run and the README
// print it.
type TagClass struct {
	Name string
	// Tags says which tags belong to the class, for people (Markdown).
	Tags string
	// match reports whether a tag belongs to the class; nil for the class
	// of every tag no other class matches, and for "untagged".
	match func(tag string) bool
	// keeps is the rule for one version carrying a tag of the class.
	keeps func(w *window, v Version) bool
	// kept and gone say, for a policy's values, what keeps a version and
	// why a version whose tags are all of this class goes.
	kept func(p RetentionPolicy) string
	gone func(p RetentionPolicy) string
}

// Names of the classes, as the plan's counts and reasons use them.
const (
	ClassLatest   = "latest"
	ClassVersion  = "version"
	ClassDated    = "dated"
	ClassSHA      = "sha"
	ClassStaging  = "staging"
	ClassPreview  = "preview"
	ClassAttached = "attached"
	ClassUntagged = "untagged"
	// ClassReached is no tag class: it is the reason of a kept version that
	// no tag of its own keeps, but a kept version reaches.
	ClassReached = "reached"
	// ClassOrphan is the reason of an untagged version that no version of
	// the package lists or refers to: what a failed or cancelled run pushed.
	ClassOrphan = "orphan"
)

var (
	datedTag   = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	shaTag     = regexp.MustCompile(`^sha-[0-9a-f]{7,40}$`)
	previewTag = regexp.MustCompile(`^pr-[0-9]+$`)
	// Split mode's staging tags: publish.StagingTag, "staging-<key>-<os>-<arch>".
	stagingTag = regexp.MustCompile(`^staging-.`)
	// Cosign's tag-based storage: sha256-<hex>.sig/.att/.sbom, and the OCI
	// referrers tag schema fallback sha256-<hex>. They are reachable through
	// the manifest they are about, never roots of their own.
	attachedTag = regexp.MustCompile(`^sha256-([0-9a-f]{64})(\.(sig|att|sbom))?$`)
)

func isDated(tag string) bool {
	if !datedTag.MatchString(tag) {
		return false
	}
	_, err := time.Parse(time.DateOnly, tag)
	return err == nil
}

func always(*window, Version) bool { return true }
func never(*window, Version) bool  { return false }
func text(s string) func(RetentionPolicy) string {
	return func(RetentionPolicy) string { return s }
}

// RetentionClasses is the retention policy as data, in the order a version
// carrying tags of several classes is attributed to them.
var RetentionClasses = []TagClass{
	{
		Name:  ClassLatest,
		Tags:  "`latest`",
		match: func(t string) bool { return t == "latest" },
		keeps: always,
		kept:  text("always"),
	},
	{
		Name:  ClassVersion,
		Tags:  "`1.2.3`, `1.2`, `1`, `v1.2.3`, the agent's version, `--tag` extras: any other tag",
		keeps: always,
		kept:  text("always"),
	},
	{
		Name:  ClassDated,
		Tags:  "`YYYY-MM-DD`",
		match: isDated,
		keeps: func(w *window, v Version) bool {
			for _, t := range v.Tags {
				if w.keptDates[t] {
					return true
				}
			}
			return false
		},
		kept: func(p RetentionPolicy) string {
			return fmt.Sprintf("while among the newest %d dates (`--keep`); they span the window", p.KeepDated)
		},
		gone: func(p RetentionPolicy) string {
			return fmt.Sprintf("dated tag past the newest %d dates", p.KeepDated)
		},
	},
	{
		Name:  ClassSHA,
		Tags:  "`sha-<commit>`",
		match: shaTag.MatchString,
		keeps: func(w *window, v Version) bool { return w.inWindow(v) },
		kept:  text("while the version was pushed or tagged inside the window; after that only while a kept tag reaches it"),
		gone:  text("sha- tag from before the window, and no kept tag reaches it"),
	},
	{
		Name:  ClassStaging,
		Tags:  "`staging-<key>-<os>-<arch>`",
		match: stagingTag.MatchString,
		keeps: func(w *window, v Version) bool {
			if w.age(v) < w.policy.StagingGrace {
				return true
			}
			// Unmerged parts wait inside the window for a merge to retry;
			// merged ones live exactly as long as an index that lists them.
			return w.merged != nil && !w.merged[v.Digest] && w.inWindow(v)
		},
		kept: func(p RetentionPolicy) string {
			return fmt.Sprintf("while younger than %s; then, while unmerged (no kept index lists the part), inside the window", FormatAge(p.StagingGrace))
		},
		gone: func(p RetentionPolicy) string {
			return fmt.Sprintf("staging part older than %s, from before the window, and no kept index lists it", FormatAge(p.StagingGrace))
		},
	},
	{
		Name:  ClassPreview,
		Tags:  "`pr-<N>`",
		match: previewTag.MatchString,
		keeps: func(w *window, v Version) bool { return w.age(v) < w.policy.PreviewMaxAge },
		kept: func(p RetentionPolicy) string {
			return fmt.Sprintf("while younger than %s (`--pr-max-age`)", FormatAge(p.PreviewMaxAge))
		},
		gone: func(p RetentionPolicy) string {
			return fmt.Sprintf("pr- preview older than %s", FormatAge(p.PreviewMaxAge))
		},
	},
	{
		Name:  ClassAttached,
		Tags:  "`sha256-<digest>.sig`, `.att`, `.sbom`",
		match: attachedTag.MatchString,
		keeps: never,
		kept:  text("never on its own: with the manifest it signs or attests"),
		gone:  text("signature or attestation of a manifest that goes"),
	},
	{
		Name:  ClassUntagged,
		Tags:  "(no tag)",
		keeps: never,
		kept:  text("never on its own: while a kept index lists it, or it is an OCI 1.1 referrer of a kept manifest"),
		gone:  text("untagged, and only versions that go list it or are its subject"),
	},
}

// classOf returns the class a tag belongs to.
func classOf(tag string) *TagClass {
	var fallback *TagClass
	for i := range RetentionClasses {
		c := &RetentionClasses[i]
		switch {
		case c.Name == ClassUntagged:
		case c.match == nil:
			fallback = c
		case c.match(tag):
			return c
		}
	}
	return fallback
}

func classNamed(name string) *TagClass {
	for i := range RetentionClasses {
		if RetentionClasses[i].Name == name {
			return &RetentionClasses[i]
		}
	}
	return nil
}

// ClassOf names the class a tag belongs to.
func ClassOf(tag string) string { return classOf(tag).Name }

// FormatAge writes whole days as "14d", anything else as Go does ("36h0m0s").
func FormatAge(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// ParseAge reads an age as "14d" (days) or a Go duration ("36h").
func ParseAge(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		if _, err := fmt.Sscanf(n, "%d", &days); err == nil && fmt.Sprint(days) == n {
			return time.Duration(days) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("age %q: want days such as 14d, or a duration such as 36h", s)
	}
	return d, nil
}

// PolicyMarkdown is the policy as the README shows it: one row per class.
func PolicyMarkdown(p RetentionPolicy) string {
	var b strings.Builder
	b.WriteString("| class | tags | keeps its manifest |\n|---|---|---|\n")
	for _, c := range RetentionClasses {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", c.Name, c.Tags, c.kept(p))
	}
	return b.String()
}

// WritePolicy prints the policy as the dry run shows it, one row per class.
func WritePolicy(w io.Writer, p RetentionPolicy) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "class\ttags\tkeeps its manifest")
	for _, c := range RetentionClasses {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, plain(c.Tags), plain(c.kept(p)))
	}
	return tw.Flush()
}

// plain drops Markdown's code marks for a terminal.
func plain(s string) string { return strings.ReplaceAll(s, "`", "") }

// window is what the rules see: the policy, the dated tags kept, and, once
// the first walk is done, the manifests kept indexes list.
type window struct {
	policy    RetentionPolicy
	keptDates map[string]bool
	// start is 00:00 UTC of the oldest kept date; zero while the window
	// reaches back to the beginning.
	start time.Time
	// merged holds the manifests an index a kept tag reaches lists; nil
	// until that is known.
	merged map[string]bool
}

// touched is the last time GHCR says a version changed: its push, or a
// later tag moved onto it where GHCR records that in updated_at.
func touched(v Version) time.Time {
	if v.Updated.After(v.Created) {
		return v.Updated
	}
	return v.Created
}

func (w *window) age(v Version) time.Duration { return w.policy.Now.Sub(touched(v)) }

func (w *window) inWindow(v Version) bool { return !touched(v).Before(w.start) }
