package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nothingnesses/agent-images/gh"
	"github.com/nothingnesses/agent-images/matrix"
)

func newMatrixCmd() *cobra.Command {
	var (
		f       flakeFlags
		asJSON  bool
		runners []string
	)
	cmd := &cobra.Command{
		Use:   "matrix",
		Short: "List the release targets (agent x system) the flake builds",
		Long: `matrix reads the flake's release set with one nix eval and lists every target.
With --json it prints a GitHub strategy.matrix object and, under GitHub Actions,
also writes it as the step output "matrix", and the agents (a JSON list, each
once) as the step output "agents".`,
		Example: `  release matrix --agent pi,codex
  release matrix --json --runner aarch64-linux=my-arm-runner`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fl, err := f.nixFlake()
			if err != nil {
				return err
			}
			rs, err := matrix.ParseRunners(runners)
			if err != nil {
				return err
			}
			all, err := matrix.Load(cmd.Context(), fl)
			if err != nil {
				return err
			}
			targets, err := matrix.Select(all, f.agents, matrix.ParseSystems(f.systems))
			if err != nil {
				return err
			}
			if !asJSON {
				return matrix.WriteTable(cmd.OutOrStdout(), targets)
			}
			var buf bytes.Buffer
			if err := matrix.ForGitHub(targets, rs).WriteJSON(&buf); err != nil {
				return err
			}
			if _, err := cmd.OutOrStdout().Write(buf.Bytes()); err != nil {
				return err
			}
			if err := writeGitHubOutput("matrix", buf.String()); err != nil {
				return err
			}
			// One merge job per agent needs the agents without repeats,
			// which a workflow cannot compute from the matrix itself.
			return writeGitHubOutput("agents", outputJSON(matrix.Agents(targets)))
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a GitHub strategy.matrix object")
	cmd.Flags().StringArrayVar(&runners, "runner", nil, "SYSTEM=LABEL runner for a system's jobs (default x86_64-linux=ubuntu-24.04, aarch64-linux=ubuntu-24.04-arm)")
	return cmd
}

// writeGitHubOutput sets a step output when running under GitHub Actions;
// elsewhere it does nothing.
func writeGitHubOutput(name, value string) error {
	if os.Getenv("GITHUB_OUTPUT") == "" {
		return nil
	}
	if err := gh.SetOutput(name, strings.TrimRight(value, "\n")); err != nil {
		return fmt.Errorf("writing step output %s: %w", name, err)
	}
	return nil
}
