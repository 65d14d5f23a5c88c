package render

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/nothingnesses/agent-images/pipeline"
	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/retention"
)

// Summary prints one line per agent: what happened and where it is. An
// agent published to several destinations gets a line per destination
// below its own, saying how each went.
func Summary(w io.Writer, rep *record.Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENT\tSTATUS\tINDEX\tTAGS MOVED\tWHERE")
	kept := func(kept []record.Kept) {
		for _, k := range kept {
			fmt.Fprintf(tw, "\t\t\t\t%s stays at %s, which is newer\n", k.Tag, short(k.Index))
		}
	}
	for _, a := range rep.Agents {
		if len(a.Published) > 1 {
			fmt.Fprintf(tw, "%s\t%s\t%s\t\t\n", a.Agent, a.Status, short(a.Index))
			for _, p := range a.Published {
				where := p.Repository
				if p.Error != "" {
					where += ": " + p.Error
				}
				fmt.Fprintf(tw, "\t%s\t\t%s\t%s\n", p.Status, strings.Join(p.Moved, ","), where)
				kept(p.Kept)
			}
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Agent, a.Status, short(a.Index), strings.Join(a.Moved, ","), cmp.Or(a.Error, a.Repository))
			kept(a.Kept)
		}
		if c := a.Changes; c != nil {
			fmt.Fprintf(tw, "\t\t\t\tsince latest (%s): %s\n", record.ShortDigest(c.From.Digest), c.Headline())
			for _, p := range c.OverThreshold() {
				fmt.Fprintf(tw, "\t\t\t\t! %s grew %s, over %s\n", p.Platform, p.SizeChange(), c.ThresholdString())
			}
		}
		for _, n := range a.Notes {
			fmt.Fprintf(tw, "\t\t\t\tnote: %s\n", oneLine(n))
		}
	}
	tw.Flush()
}

// BuildSummary prints one line per image of a split-mode build: its
// digest, whether it is signed, and its staging tag or its error.
func BuildSummary(w io.Writer, rec *record.Build) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tDIGEST\tSIGNED\tSTAGED AT")
	for _, img := range rec.Images {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\n", img, short(img.Digest), img.Signature != nil, cmp.Or(img.Error, img.Ref.String()))
	}
	tw.Flush()
}

// Groups prints each agent's smoke results in a collapsible group of the
// Actions log, and each failure as an error annotation.
func Groups(w io.Writer, rep *record.Report) {
	for _, a := range rep.Agents {
		fmt.Fprintf(w, "::group::%s %s (%s)\n", a.Agent, a.Version, a.Status)
		for _, p := range a.Platforms {
			if p.Digest.Hex != "" {
				fmt.Fprintf(w, "%s digest=%s size=%d\n", p.System, p.Digest, p.Size)
			} else {
				fmt.Fprintf(w, "%s not built\n", p.System)
			}
			if s := p.Smoke; s != nil {
				fmt.Fprintf(w, "  smoke: %s, %d passed, %d failed, %d skipped %s%s\n", s.Mode, s.Passed, len(s.Failed), len(s.Skipped), s.Runner, s.Reason)
				for _, r := range append(s.Failed, s.Skipped...) {
					fmt.Fprintf(w, "  %s\n", r)
				}
			}
			if p.Error != "" {
				fmt.Fprintf(w, "::error title=%s %s::%s\n", a.Agent, p.System, oneLine(p.Error))
			}
		}
		if a.Error != "" && len(a.Platforms) == 0 {
			fmt.Fprintf(w, "::error title=%s::%s\n", a.Agent, oneLine(a.Error))
		}
		for _, p := range a.Published {
			if p.Failed() {
				fmt.Fprintf(w, "::error title=%s in %s::%s\n", a.Agent, p.Repository, oneLine(p.Error))
			}
		}
		fmt.Fprintln(w, "::endgroup::")
	}
}

// Policy prints the retention policy as the dry run shows it.
func Policy(w io.Writer, p retention.Policy) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "class\ttags\tkeeps its manifest")
	for _, r := range retention.Rules {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Class, plain(r.Tags), plain(r.Kept(p)))
	}
	return tw.Flush()
}

// Plan prints one agent's prune plan as the dry run shows it: how many
// versions each reason keeps, then every version each reason deletes.
func Plan(w io.Writer, agent string, plan *retention.Plan) {
	window := "all time (fewer dated tags than --keep)"
	if !plan.WindowStart.IsZero() {
		window = "from " + plan.WindowStart.Format(time.DateOnly)
	}
	fmt.Fprintf(w, "%s: keep %d versions, delete %d; window %s\n", agent, len(plan.Keep), len(plan.Delete), window)
	for _, g := range plan.Groups() {
		verb := map[bool]string{true: "keep", false: "delete"}[g.Reason.Keep]
		fmt.Fprintf(w, "  %s %d, %s: %s\n", verb, len(g.Versions), g.Reason.Class, plain(g.Reason.Why))
		if g.Reason.Keep {
			continue
		}
		for _, v := range g.Versions {
			tags := ""
			if len(v.Tags) > 0 {
				tags = " (" + strings.Join(v.Tags, ", ") + ")"
			}
			fmt.Fprintf(w, "    %d %s%s\n", v.ID, v.Digest, tags)
		}
	}
}

// plain drops Markdown's code marks for a terminal.
func plain(s string) string { return strings.ReplaceAll(s, "`", "") }

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// short is a digest cut to the algorithm and 12 hex digits; "" for none.
func short(h v1.Hash) string {
	if h.Hex == "" {
		return ""
	}
	return record.ShortDigest(h.String())
}

// Progress shows a run's events: a live table on a terminal, plain lines
// elsewhere (a log, Actions).
type Progress struct {
	w     io.Writer
	live  bool
	mu    sync.Mutex
	rows  map[string]string
	drawn int
	last  time.Time
}

// NewProgress shows progress on w, live when w is a terminal and the run
// is not under Actions.
func NewProgress(w io.Writer, actions bool) *Progress {
	d := &Progress{w: w, rows: map[string]string{}}
	if f, ok := w.(*os.File); ok && !actions {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb" {
			d.live = true
		}
	}
	return d
}

// Event shows one event of the run.
func (d *Progress) Event(e pipeline.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	key := e.Agent
	if e.System != "" {
		key += "/" + string(e.System)
	}
	line := string(e.Stage)
	if e.Total > 0 {
		line += fmt.Sprintf(" %s/%s", bytesString(e.Complete), bytesString(e.Total))
	}
	if e.Detail != "" {
		line += " " + oneLine(e.Detail)
	}
	if !d.live {
		if e.Stage == record.StagePushing && e.Total > 0 {
			return // byte counts would flood a log; the live display shows them
		}
		fmt.Fprintf(d.w, "%-36s %s\n", key, line)
		return
	}
	d.rows[key] = line
	if time.Since(d.last) > 100*time.Millisecond || e.Stage == record.StageDone || e.Stage == record.StageFailed {
		d.draw()
	}
}

func (d *Progress) draw() {
	if d.drawn > 0 {
		fmt.Fprintf(d.w, "\x1b[%dA", d.drawn)
	}
	for _, k := range slices.Sorted(maps.Keys(d.rows)) {
		l := d.rows[k]
		if len(l) > 100 {
			l = l[:100] + "..."
		}
		fmt.Fprintf(d.w, "\x1b[2K%-36s %s\n", k, l)
	}
	d.drawn = len(d.rows)
	d.last = time.Now()
}

// Stop draws the live table a last time.
func (d *Progress) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.live {
		d.draw()
	}
}

// bytesString is a byte count as record writes it, without the space, so
// that a progress line stays short.
func bytesString(n int64) string { return strings.ReplaceAll(record.HumanBytes(n), " ", "") }
