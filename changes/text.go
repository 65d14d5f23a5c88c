package changes

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteText writes the report for a terminal: the version, a size table,
// the store paths of each platform, the moved inputs, and the notes.
func (r *Report) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, r.Headline())
	width := max(len(r.From.Label()), len(r.To.Label()))
	fmt.Fprintf(bw, "  from %-*s  %s\n", width, r.From.Label(), r.From.Reference())
	fmt.Fprintf(bw, "  to   %-*s  %s\n", width, r.To.Label(), r.To.Reference())
	if r.Same() {
		fmt.Fprintln(bw, "  both name the same release: nothing changed")
		return bw.Flush()
	}
	fmt.Fprintf(bw, "  attestations %s\n", r.Evidence())

	fmt.Fprintln(bw)
	tw := tabwriter.NewWriter(bw, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PLATFORM\tFROM\tTO\tCHANGE")
	for _, p := range r.Platforms {
		change := p.SizeChange()
		if p.OverThreshold {
			change += "  ! grew over " + r.ThresholdString()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Platform, sizeOf(p.From), sizeOf(p.To), change)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	for _, p := range r.Platforms {
		if !p.StorePathsCompared {
			continue
		}
		fmt.Fprintf(bw, "\n%s store paths: %d added, %d removed\n", p.Platform, len(p.Added), len(p.Removed))
		tw := tabwriter.NewWriter(bw, 0, 4, 2, ' ', 0)
		for _, c := range p.PathChanges() {
			sign := "-"
			if c.Added {
				sign = "+"
			}
			fmt.Fprintf(tw, "  %s %s\t%s\t%s\n", sign, c.Name, c.Version, c.Path)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	if len(r.Inputs) > 0 {
		fmt.Fprintln(bw, "\nflake inputs moved:")
		tw := tabwriter.NewWriter(bw, 0, 4, 2, ' ', 0)
		for _, in := range r.Inputs {
			fmt.Fprintf(tw, "  %s\t%s -> %s\n", in.Name, in.From, in.To)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	} else if r.InputsCompared {
		fmt.Fprintln(bw, "\nflake inputs: none moved")
	}

	if len(r.Notes) > 0 {
		fmt.Fprintln(bw, "\nnot compared:")
		for _, n := range r.Notes {
			fmt.Fprintf(bw, "  %s\n", n)
		}
	}
	return bw.Flush()
}

// Headline is the agent and its version change in one line.
func (r *Report) Headline() string {
	switch {
	case r.VersionChanged():
		return fmt.Sprintf("%s %s -> %s", r.Agent, orUnknown(r.From.Version), orUnknown(r.To.Version))
	default:
		return fmt.Sprintf("%s %s (version unchanged)", r.Agent, orUnknown(r.To.Version))
	}
}

// Evidence says whether the attestations were verified.
func (r *Report) Evidence() string {
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
	sign := "+"
	delta := p.SizeDelta
	if delta < 0 {
		sign, delta = "-", -delta
	}
	if p.From.Size == 0 {
		return sign + HumanBytes(delta)
	}
	return fmt.Sprintf("%s%s (%+.1f%%)", sign, HumanBytes(delta), p.SizeGrowth*100)
}

// ThresholdString is the report's threshold as a percentage, "10%".
func (r *Report) ThresholdString() string {
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
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return !out[i].Added && out[j].Added
	})
	return out
}

// String is the store path, or the name and version when there is no path.
func (s StorePath) String() string {
	if s.Path != "" {
		return s.Path
	}
	return strings.TrimSpace(s.Name + " " + s.Version)
}

func sizeOf(im *Image) string {
	if im == nil {
		return "-"
	}
	return HumanBytes(im.Size)
}

func orUnknown(v string) string {
	if v == "" {
		return "(version unknown)"
	}
	return v
}

// HumanBytes is n in B, KiB, MiB or GiB with one decimal.
func HumanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
