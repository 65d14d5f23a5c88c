package render

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/nothingnesses/agent-images/record"
)

// maxPathsShown caps the store paths listed per platform: a GitHub issue or
// release body holds at most 65536 characters, and a nixpkgs update can
// change hundreds of paths in each of thirty agents. `release diff` lists
// them all.
const maxPathsShown = 40

// sign marks a store path added or removed, as diff does.
var sign = map[bool]string{true: "+", false: "-"}

// ChangesSection is the Markdown of what changed since the last release,
// one part per agent, for the step summary, the GitHub Release notes and
// the nightly issue. Growth above a report's size threshold is called out
// first, so that it is seen without reading every agent. Empty when there
// is nothing to compare.
func ChangesSection(reports []*record.Changes) string {
	return changesSection(reports, true)
}

// ChangesSectionWithin is ChangesSection in at most limit bytes, for a body
// GitHub caps. When the full section is longer, the store path lists go (the
// table still counts them); when even that is too long, the last agents go,
// and a line says how many and where to find them.
func ChangesSectionWithin(reports []*record.Changes, limit int) string {
	if full := changesSection(reports, true); len(full) <= limit {
		return full
	}
	for n := len(reports); n > 0; n-- {
		out := changesSection(reports[:n], false)
		if n < len(reports) {
			out += fmt.Sprintf("… and %d more agents: their release.json and the run's step summary have them, `release diff AGENT` shows any one.\n", len(reports)-n)
		}
		if len(out) <= limit {
			return out
		}
	}
	return ""
}

func changesSection(reports []*record.Changes, paths bool) string {
	if len(reports) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("### What changed since the last release\n\n")
	var over strings.Builder
	for _, r := range reports {
		for _, p := range r.OverThreshold() {
			fmt.Fprintf(&over, "> - **%s** %s: %s, over %s\n", r.Agent, p.Platform, p.SizeChange(), r.ThresholdString())
		}
	}
	if over.Len() > 0 {
		b.WriteString("> [!WARNING]\n> Images grew more than the size threshold:\n" + over.String() + "\n")
	}
	for _, r := range reports {
		writeChanges(&b, r, paths)
	}
	return b.String()
}

// writeChanges writes one agent's part; without paths, no store path lists.
func writeChanges(b *strings.Builder, r *record.Changes, paths bool) {
	headline := fmt.Sprintf("%s %s", r.Agent, r.To.Version)
	if r.VersionChanged() {
		headline = fmt.Sprintf("%s %s → %s", r.Agent, cmp.Or(r.From.Version, "(unknown)"), cmp.Or(r.To.Version, "(unknown)"))
	}
	fmt.Fprintf(b, "#### %s\n\n", headline)
	if r.Same() {
		fmt.Fprintf(b, "Unchanged: `%s` is the release it is compared with.\n\n", r.To.Reference())
		return
	}
	fmt.Fprintf(b, "From %s to %s; attestations %s.\n\n", releaseRef(r.From), releaseRef(r.To), r.Evidence())

	b.WriteString("| Platform | Before | After | Change | Store paths |\n|---|---|---|---|---|\n")
	for _, p := range r.Platforms {
		change := p.SizeChange()
		if p.OverThreshold {
			change += " **over " + r.ThresholdString() + "**"
		}
		paths := "not compared"
		if p.StorePathsCompared {
			paths = fmt.Sprintf("+%d −%d", len(p.Added), len(p.Removed))
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", p.Platform, size(p.From, "–"), size(p.To, "–"), cell(change), paths)
	}
	b.WriteString("\n")

	switch {
	case len(r.Inputs) > 0:
		b.WriteString("Flake inputs moved:\n\n| Input | Before | After |\n|---|---|---|\n")
		for _, in := range r.Inputs {
			fmt.Fprintf(b, "| `%s` | `%s` | `%s` |\n", cell(in.Name), cell(in.From.String()), cell(in.To.String()))
		}
		b.WriteString("\n")
	case r.InputsCompared:
		b.WriteString("No flake input moved.\n\n")
	}

	for _, p := range r.Platforms {
		if !paths || !p.StorePathsCompared || len(p.Added)+len(p.Removed) == 0 {
			continue
		}
		fmt.Fprintf(b, "<details><summary>Store paths of %s: %d added, %d removed</summary>\n\n```diff\n", p.Platform, len(p.Added), len(p.Removed))
		all := p.PathChanges()
		for i, c := range all {
			if i == maxPathsShown {
				fmt.Fprintf(b, "# … and %d more: release diff %s lists them all\n", len(all)-i, r.Agent)
				break
			}
			fmt.Fprintf(b, "%s %s\n", sign[c.Added], c)
		}
		b.WriteString("```\n\n</details>\n\n")
	}

	if len(r.Notes) > 0 {
		b.WriteString("Not compared:\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(b, "- %s\n", n)
		}
		b.WriteString("\n")
	}
}

func releaseRef(r record.Compared) string {
	if r.Tag != "" {
		return fmt.Sprintf("`%s` (`%s`)", r.Tag, r.Reference())
	}
	return "`" + r.Reference() + "`"
}

// size is an image's size, or none for no image.
func size(im *record.ImageSize, none string) string {
	if im == nil {
		return none
	}
	return record.HumanBytes(im.Size)
}

// notesSection lists, per agent by name, what a release could not do
// without failing for it (record.Agent's notes); empty when there are none.
func notesSection(agents []*record.Agent) string {
	var b strings.Builder
	for _, a := range slices.SortedStableFunc(slices.Values(agents), func(a, b *record.Agent) int { return strings.Compare(a.Agent, b.Agent) }) {
		for _, n := range a.Notes {
			fmt.Fprintf(&b, "- **%s**: %s\n", a.Agent, oneLine(n))
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return "\nNotes:\n\n" + b.String()
}

// ChangesText writes a change report for a terminal (release diff): the
// version, a size table, the store paths of each platform, the moved inputs,
// and the notes. One tabwriter aligns each table: a line without a tab ends
// one.
func ChangesText(w io.Writer, r *record.Changes) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, r.Headline())
	width := max(len(r.From.Label()), len(r.To.Label()))
	fmt.Fprintf(tw, "  from %-*s  %s\n", width, r.From.Label(), r.From.Reference())
	fmt.Fprintf(tw, "  to   %-*s  %s\n", width, r.To.Label(), r.To.Reference())
	if r.Same() {
		fmt.Fprintln(tw, "  both name the same release: nothing changed")
		return tw.Flush()
	}
	fmt.Fprintf(tw, "  attestations %s\n\nPLATFORM\tFROM\tTO\tCHANGE\n", r.Evidence())
	for _, p := range r.Platforms {
		change := p.SizeChange()
		if p.OverThreshold {
			change += "  ! grew over " + r.ThresholdString()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Platform, size(p.From, "-"), size(p.To, "-"), change)
	}
	for _, p := range r.Platforms {
		if !p.StorePathsCompared {
			continue
		}
		fmt.Fprintf(tw, "\n%s store paths: %d added, %d removed\n", p.Platform, len(p.Added), len(p.Removed))
		for _, c := range p.PathChanges() {
			fmt.Fprintf(tw, "  %s %s\t%s\t%s\n", sign[c.Added], c.Name, c.Version, c.Path)
		}
	}
	if len(r.Inputs) > 0 {
		fmt.Fprintln(tw, "\nflake inputs moved:")
		for _, in := range r.Inputs {
			fmt.Fprintf(tw, "  %s\t%s -> %s\n", in.Name, in.From, in.To)
		}
	} else if r.InputsCompared {
		fmt.Fprintln(tw, "\nflake inputs: none moved")
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(tw, "\nnot compared:")
		for _, n := range r.Notes {
			fmt.Fprintf(tw, "  %s\n", n)
		}
	}
	return tw.Flush()
}
