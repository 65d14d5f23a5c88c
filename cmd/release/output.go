package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nothingnesses/agent-images/pipeline"
	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/render"
)

// runRelease runs release or release merge with progress on stderr, the
// summary on stdout, and the report where asked; under GitHub Actions also
// the log groups, the step summary and the step outputs.
func runRelease(cmd *cobra.Command, f *releaseFlags, run func(context.Context, pipeline.Options) (*record.Report, error)) error {
	rep, actions, err := runWithProgress(cmd, f, run)
	if err != nil {
		return err
	}
	render.Summary(cmd.OutOrStdout(), rep)
	if actions {
		render.Groups(cmd.ErrOrStderr(), rep)
		if err := render.WriteStepSummary(nil, render.StepSummary(rep.Agents)); err != nil {
			return err
		}
		outs, err := render.ReleaseOutputs(rep.Agents, f.output)
		if err != nil {
			return err
		}
		if err := render.WriteOutputs(nil, outs...); err != nil {
			return err
		}
	}
	return finish(rep, f.output)
}

// runBuild runs release build: the build record goes to --output and, under
// GitHub Actions, to the build-record step output.
func runBuild(cmd *cobra.Command, f *releaseFlags) error {
	rec, actions, err := runWithProgress(cmd, f, pipeline.BuildStaged)
	if err != nil {
		return err
	}
	render.BuildSummary(cmd.OutOrStdout(), rec)
	if actions {
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if err := render.WriteOutputs(nil, render.Output{Name: "build-record", Value: string(b)}); err != nil {
			return err
		}
	}
	return finish(rec, f.output)
}

// runWithProgress runs one pipeline mode on the flags' options, showing its
// progress on stderr, and says whether it ran under GitHub Actions.
func runWithProgress[T any](cmd *cobra.Command, f *releaseFlags, run func(context.Context, pipeline.Options) (T, error)) (rec T, actions bool, err error) {
	o, err := f.options()
	if err == nil {
		err = f.signFlags.setUp(cmd, &o)
	}
	if err != nil {
		return rec, false, err
	}
	actions = os.Getenv("GITHUB_ACTIONS") == "true"
	progress := render.NewProgress(cmd.ErrOrStderr(), actions)
	o.Events = progress.Event
	rec, err = run(cmd.Context(), o)
	progress.Stop()
	return rec, actions, err
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
