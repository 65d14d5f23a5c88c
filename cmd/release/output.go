package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/nothingnesses/agent-images/gh"
	"github.com/nothingnesses/agent-images/pipeline"
	"github.com/nothingnesses/agent-images/record"
)

type runFunc func(context.Context, pipeline.Options) (*record.Report, error)

// runRelease runs release or release merge with progress on stderr, the
// summary on stdout, and the report where asked.
func runRelease(cmd *cobra.Command, f *releaseFlags, run runFunc) error {
	o, err := f.options()
	if err != nil {
		return err
	}
	if err := f.signFlags.setUp(cmd, &o); err != nil {
		return err
	}
	github := os.Getenv("GITHUB_ACTIONS") == "true"
	disp := newDisplay(cmd.ErrOrStderr(), github)
	o.Events = disp.event
	rep, err := run(cmd.Context(), o)
	disp.stop()
	if err != nil {
		return err
	}
	writeSummary(cmd.OutOrStdout(), rep)
	if github {
		writeGroups(cmd.ErrOrStderr(), rep)
		if err := writeStepSummary(rep); err != nil {
			return err
		}
		if err := writeOutputs(rep, f.output); err != nil {
			return err
		}
	}
	return finish(rep, f.output)
}

// runBuild runs release build: the build record goes to --output and, under
// GitHub Actions, to the build-record step output.
func runBuild(cmd *cobra.Command, f *releaseFlags) error {
	o, err := f.options()
	if err != nil {
		return err
	}
	if err := f.signFlags.setUp(cmd, &o); err != nil {
		return err
	}
	github := os.Getenv("GITHUB_ACTIONS") == "true"
	disp := newDisplay(cmd.ErrOrStderr(), github)
	o.Events = disp.event
	rec, err := pipeline.BuildStaged(cmd.Context(), o)
	disp.stop()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tDIGEST\tSIGNED\tSTAGED AT")
	for _, img := range rec.Images {
		where, signed := img.Ref.String(), img.Signature != nil
		if img.Error != "" {
			where = img.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\n", img, short(digestString(img.Digest)), signed, where)
	}
	tw.Flush()
	if github {
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if err := writeGitHubOutput("build-record", string(b)); err != nil {
			return err
		}
	}
	return finish(rec, f.output)
}

// finish writes what a run recorded (release.json, or the build record) to
// output when one is given, and fails the command when any part failed.
func finish(rec interface {
	WriteFile(path string) error
	Failed() []string
}, output string) error {
	if output != "" {
		if err := rec.WriteFile(output); err != nil {
			return fmt.Errorf("writing --output %s: %w", output, err)
		}
	}
	if failed := rec.Failed(); len(failed) > 0 {
		return &exitError{msg: "failed: " + strings.Join(failed, ", ")}
	}
	return nil
}

// writeSummary prints one line per agent: what happened and where it is.
// An agent published to several registries gets a line per registry below
// its own, saying how each went.
func writeSummary(w io.Writer, rep *record.Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENT\tSTATUS\tINDEX\tTAGS MOVED\tWHERE")
	kept := func(kept []record.Kept) {
		for _, k := range kept {
			fmt.Fprintf(tw, "\t\t\t\t%s stays at %s, which is newer\n", k.Tag, short(k.Index.String()))
		}
	}
	for _, a := range rep.Agents {
		if len(a.Published) > 1 {
			fmt.Fprintf(tw, "%s\t%s\t%s\t\t\n", a.Agent, a.Status, short(indexString(a)))
			for _, p := range a.Published {
				where := p.Repository
				if p.Error != "" {
					where += ": " + p.Error
				}
				fmt.Fprintf(tw, "\t%s\t\t%s\t%s\n", p.Status, strings.Join(p.Moved, ","), where)
				kept(p.Kept)
			}
		} else {
			where := a.Repository
			if a.Error != "" {
				where = a.Error
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Agent, a.Status, short(indexString(a)), strings.Join(a.Moved, ","), where)
			kept(a.Kept)
		}
		if c := a.Changes; c != nil {
			fmt.Fprintf(tw, "\t\t\t\tsince latest (%s): %s\n", short(c.From.Digest), c.Headline())
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

// indexString is an agent's index digest, "" when it has none.
func indexString(a *record.Agent) string { return digestString(a.Index) }

// digestString is a digest, "" for none.
func digestString(h v1.Hash) string {
	if h.Hex == "" {
		return ""
	}
	return h.String()
}

func short(digest string) string {
	if len(digest) > 19 {
		return digest[:19]
	}
	return digest
}

// writeGroups prints each agent's smoke results in a collapsible log group.
func writeGroups(w io.Writer, rep *record.Report) {
	for _, a := range rep.Agents {
		fmt.Fprintf(w, "::group::%s %s (%s)\n", a.Agent, a.Version, a.Status)
		for _, p := range a.Platforms {
			if p.Digest.Hex != "" {
				fmt.Fprintf(w, "%s digest=%s size=%d\n", p.System, p.Digest, p.Size)
			} else {
				fmt.Fprintf(w, "%s not built\n", p.System)
			}
			if p.Smoke != nil {
				fmt.Fprintf(w, "  smoke: %s, %d passed, %d failed, %d skipped %s%s\n", p.Smoke.Mode, p.Smoke.Passed, len(p.Smoke.Failed), len(p.Smoke.Skipped), p.Smoke.Runner, p.Smoke.Reason)
				for _, r := range append(p.Smoke.Failed, p.Smoke.Skipped...) {
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

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// writeStepSummary appends a Markdown table to $GITHUB_STEP_SUMMARY.
func writeStepSummary(rep *record.Report) error {
	var b strings.Builder
	fmt.Fprintln(&b, "### Agent images")
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "| Agent | Version | Status | Index | Platforms | Tags |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|")
	for _, a := range rep.Agents {
		var plats []string
		for _, p := range a.Platforms {
			s := string(p.System)
			if p.Smoke != nil {
				s += fmt.Sprintf(" (smoke %s: %d passed, %d failed)", p.Smoke.Mode, p.Smoke.Passed, len(p.Smoke.Failed))
			}
			plats = append(plats, s)
		}
		status := string(a.Status)
		if len(a.Published) > 1 {
			// Which registry failed, and that the others completed.
			var each []string
			for _, p := range a.Published {
				s := fmt.Sprintf("`%s`: %s", p.Repository, p.Status)
				if p.Error != "" {
					s += ": " + oneLine(p.Error)
				}
				each = append(each, s)
			}
			status = strings.Join(each, "<br>")
		} else if a.Error != "" {
			status += ": " + oneLine(a.Error)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | `%s` | %s | %s |\n", a.Agent, a.Version, status, short(indexString(a)), strings.Join(plats, "<br>"), strings.Join(a.Tags, ", "))
	}
	notes := map[string][]string{}
	var reports []*record.Changes
	for _, a := range rep.Agents {
		notes[a.Agent] = a.Notes
		if a.Changes != nil {
			reports = append(reports, a.Changes)
		}
	}
	b.WriteString(gh.NotesSection(notes))
	if len(reports) > 0 {
		b.WriteString("\n" + gh.ChangesSection(reports))
	}
	if err := gh.AppendSummary(b.String()); err != nil {
		return fmt.Errorf("writing the step summary: %w", err)
	}
	return nil
}

// writeOutputs sets the step outputs the Action exposes.
func writeOutputs(rep *record.Report, releaseJSON string) error {
	digests := map[string]string{}
	for _, a := range rep.Agents {
		if d := indexString(a); d != "" {
			digests[a.Agent] = d
		}
	}
	b, err := json.Marshal(digests)
	if err != nil {
		return err
	}
	if err := writeGitHubOutput("digests", string(b)); err != nil {
		return err
	}
	if releaseJSON != "" {
		return writeGitHubOutput("release-json", releaseJSON)
	}
	return nil
}

// display shows progress: a live table on a terminal, plain lines elsewhere.
type display struct {
	w     io.Writer
	live  bool
	mu    sync.Mutex
	rows  map[string]string
	order []string
	drawn int
	last  time.Time
}

func newDisplay(w io.Writer, github bool) *display {
	d := &display{w: w, rows: map[string]string{}}
	if f, ok := w.(*os.File); ok && !github {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb" {
			d.live = true
		}
	}
	return d
}

func (d *display) event(e pipeline.Event) {
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
	if _, ok := d.rows[key]; !ok {
		d.order = append(d.order, key)
		sort.Strings(d.order)
	}
	d.rows[key] = line
	if time.Since(d.last) > 100*time.Millisecond || e.Stage == record.StageDone || e.Stage == record.StageFailed {
		d.draw()
	}
}

func (d *display) draw() {
	if d.drawn > 0 {
		fmt.Fprintf(d.w, "\x1b[%dA", d.drawn)
	}
	for _, k := range d.order {
		l := d.rows[k]
		if len(l) > 100 {
			l = l[:100] + "..."
		}
		fmt.Fprintf(d.w, "\x1b[2K%-36s %s\n", k, l)
	}
	d.drawn = len(d.order)
	d.last = time.Now()
}

func (d *display) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.live {
		d.draw()
	}
}

func bytesString(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
