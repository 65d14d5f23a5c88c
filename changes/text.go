package changes

import (
	"bufio"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/nothingnesses/agent-images/record"
)

// WriteText writes the report for a terminal: the version, a size table,
// the store paths of each platform, the moved inputs, and the notes.
func WriteText(w io.Writer, r *record.Changes) error {
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

func sizeOf(im *record.ImageSize) string {
	if im == nil {
		return "-"
	}
	return record.HumanBytes(im.Size)
}
