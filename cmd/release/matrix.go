package main

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/pipeline"
	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/render"
)

func newMatrixCmd() *cobra.Command {
	var (
		f       flakeFlags
		asJSON  bool
		runners []string
		c       changedFlags
	)
	cmd := &cobra.Command{
		Use:   "matrix",
		Short: "List the release targets (agent x system) the flake builds",
		Long: `matrix reads the flake's release set with one nix eval and lists every target.
With --json it prints a GitHub strategy.matrix object and, under GitHub Actions,
also writes it as the step output "matrix", the agents (a JSON list, each
once) as the step output "agents", and every selected agent, changed or
not, as "selected" (what release prune takes in a workflow,
whose token may not list the owner's packages).

It also names the agents the flake lists (lib/agents.nix) that llm-agents no
longer provides on a system they are expected on: after the table, or with
--json on stderr and as the step output "missing" (a JSON list of
{agent, system, package, reason}). They have no target; the others still
release.

With --changed-only it compares with what --registry has and lists only the
agents a split release has to build: an agent whose index under latest was
built from the derivations this evaluation gives, whose images are all there
and signed by the identity of the sign flags, and onto which no tag has to
move (so no job would write anything) is left out, and its release.json
record, status unchanged, is written to --output. A nightly with nothing new
then has an empty matrix.`,
		Example: `  release matrix --agent pi,codex
  release matrix --json --runner aarch64-linux=my-arm-runner
  release matrix --json --changed-only --registry ghcr.io/me/my-images --output unchanged.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fl, err := f.nixFlake()
			if err != nil {
				return err
			}
			rs, err := parseRunners(runners)
			if err != nil {
				return err
			}
			if c.output != "" && !c.changedOnly {
				return errors.New("--output is the report of the agents --changed-only leaves out: add --changed-only")
			}
			plan, err := flake.LoadPlan(cmd.Context(), fl, f.agents, flake.ParseSystems(f.systems))
			if err != nil {
				return err
			}
			// Every agent this run is about, changed or not: what the
			// nightly's prune keeps in shape.
			targets, selected := plan.Targets, flake.Agents(plan.Targets)
			if c.changedOnly {
				if targets, err = c.changed(cmd, fl, targets); err != nil {
					return err
				}
			}
			if !asJSON {
				if err := flake.WriteTable(cmd.OutOrStdout(), targets); err != nil {
					return err
				}
				return writeMissing(cmd.OutOrStdout(), plan.Missing, "\nmissing: ")
			}
			var buf bytes.Buffer
			if err := flake.ForGitHub(targets, rs).WriteJSON(&buf); err != nil {
				return err
			}
			if _, err := cmd.OutOrStdout().Write(buf.Bytes()); err != nil {
				return err
			}
			prefix := "warning: missing: "
			if os.Getenv("GITHUB_ACTIONS") == "true" {
				prefix = "::warning title=Agent missing from llm-agents::"
			}
			if err := writeMissing(cmd.ErrOrStderr(), plan.Missing, prefix); err != nil {
				return err
			}
			// One merge job per agent needs the agents without repeats,
			// which a workflow cannot compute from the matrix itself.
			return render.WriteOutputs(nil,
				render.Output{Name: "matrix", Value: strings.TrimRight(buf.String(), "\n")},
				render.Output{Name: "missing", Value: render.JSON(append([]flake.Missing{}, plan.Missing...))},
				render.Output{Name: "selected", Value: render.JSON(append([]string{}, selected...))},
				render.Output{Name: "agents", Value: render.JSON(append([]string{}, flake.Agents(targets)...))})
		},
	}
	f.register(cmd)
	c.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a GitHub strategy.matrix object")
	cmd.Flags().StringArrayVar(&runners, "runner", nil, "SYSTEM=LABEL runner for a system's jobs (default x86_64-linux=ubuntu-24.04, aarch64-linux=ubuntu-24.04-arm)")
	return cmd
}

// changedFlags are what --changed-only needs to know of the release it
// plans for: where it publishes, what it signs with, which tags it moves.
type changedFlags struct {
	changedOnly bool
	o           pipeline.Options
	output      string
	signFlags   signFlags
}

func (c *changedFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&c.changedOnly, "changed-only", false, "list only the agents whose published index in --registry does not stand for them as they are now")
	cmd.Flags().StringSliceVar(&c.o.Registries, "registry", nil, "with --changed-only: the repository prefixes the release publishes to, repeated or comma-separated; an agent is unchanged only when it is in every one (default under GitHub Actions: ghcr.io/<owner>/<repo>)")
	cmd.Flags().BoolVar(&c.o.Insecure, "insecure", false, "with --changed-only: allow a plain-HTTP registry")
	cmd.Flags().StringVar(&c.o.Commit, "commit", "", "with --changed-only: the commit the release is of (default: GITHUB_SHA, or the flake's clean git HEAD)")
	cmd.Flags().StringVar(&c.o.GitTag, "git-tag", "", "with --changed-only: the git tag the release is of (v1.2.3: its semantic version series too); an agent any of them is not on yet is listed")
	cmd.Flags().StringSliceVar(&c.o.ExtraTags, "tag", nil, "with --changed-only: the extra tags the release moves (an agent they are not on yet is listed)")
	cmd.Flags().StringVar(&c.output, "output", "", "with --changed-only: write the release.json records of the agents left out, unchanged, to this file")
	c.signFlags.register(cmd)
}

// changed returns the targets of the agents that are not unchanged, and
// writes the others' report to --output.
func (c *changedFlags) changed(cmd *cobra.Command, fl flake.Flake, targets []flake.Target) ([]flake.Target, error) {
	if c.output != "" {
		if err := checkOutput(c.output); err != nil {
			return nil, err
		}
	}
	o := c.o
	registries, err := registriesOrDefault(o.Registries, "--changed-only compares with what the registry has:")
	if err != nil {
		return nil, err
	}
	o.Flake, o.Push, o.Registries, o.Source, o.Now = fl, true, registries, sourceOf(fl), time.Now
	o.Commit = cmp.Or(o.Commit, os.Getenv("GITHUB_SHA"))
	if err := c.signFlags.setUp(cmd, &o); err != nil {
		return nil, err
	}
	unchanged, err := pipeline.Unchanged(cmd.Context(), o, targets)
	if err != nil {
		return nil, err
	}
	same := map[string]bool{}
	for _, a := range unchanged {
		same[a.Agent] = true
		fmt.Fprintf(cmd.ErrOrStderr(), "%s: unchanged: same derivation, %s\n", a.Agent, a.Index)
	}
	if c.output != "" {
		rep := &record.Report{Registry: registries[0], Registries: registries, Commit: o.Commit, Agents: append([]*record.Agent{}, unchanged...)}
		if err := rep.WriteFile(c.output); err != nil {
			return nil, err
		}
	}
	return slices.DeleteFunc(targets, func(t flake.Target) bool { return same[t.Agent] }), nil
}

// writeMissing prints one line per missing agent, each after prefix.
func writeMissing(w io.Writer, missing []flake.Missing, prefix string) error {
	for _, m := range missing {
		if _, err := fmt.Fprintf(w, "%s%s\n", prefix, m); err != nil {
			return err
		}
	}
	return nil
}
