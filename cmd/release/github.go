package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/gh"
	"github.com/nothingnesses/agent-images/render"
)

// gitHubFlags are how every GitHub API command finds the API, the token and
// the repository: from the Actions environment, overridable by flags.
type gitHubFlags struct {
	apiURL     string
	repository string
}

func (f *gitHubFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.apiURL, "api-url", os.Getenv("GITHUB_API_URL"), "GitHub API URL (default $GITHUB_API_URL, else api.github.com)")
	cmd.Flags().StringVar(&f.repository, "repository", os.Getenv("GITHUB_REPOSITORY"), "the repository, owner/name (default $GITHUB_REPOSITORY)")
}

func (f *gitHubFlags) client(needRepo bool) (*gh.Client, error) {
	if needRepo && f.repository == "" {
		return nil, fmt.Errorf("no repository: pass --repository owner/name or set GITHUB_REPOSITORY")
	}
	token := cmp.Or(os.Getenv("GITHUB_TOKEN"), os.Getenv("GH_TOKEN"))
	if token == "" {
		return nil, fmt.Errorf("no GitHub token: set GITHUB_TOKEN (in a workflow: env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }})")
	}
	opts := []gh.Option{gh.WithToken(token)}
	if f.apiURL != "" {
		opts = append(opts, gh.WithBaseURL(f.apiURL))
	}
	c, err := gh.New(f.repository, opts...)
	if err != nil {
		return nil, fmt.Errorf("--repository (or GITHUB_REPOSITORY), --api-url (or GITHUB_API_URL): %w", err)
	}
	return c, nil
}

func newGitHubCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "github",
		Short: "The GitHub side of a release: release notes, the nightly issue, workflow outputs",
	}
	cmd.AddCommand(newGitHubNotesCmd(), newGitHubNightlyCmd(), newGitHubSummaryCmd())
	return cmd
}

func newGitHubNotesCmd() *cobra.Command {
	var f gitHubFlags
	var results, tag string
	cmd := &cobra.Command{
		Use:   "notes --release-json PATH --tag vX.Y.Z",
		Short: "Create or update the GitHub Release of a tag with each agent's index digest, tags and verify command",
		Example: `  release github notes --release-json release.json --tag v1.2.0
  release github notes --release-json releases/ --tag "$GITHUB_REF_NAME"   # one release-<agent>.json per merge job`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tag == "" {
				return fmt.Errorf("--tag is required")
			}
			agents, err := render.Read(results)
			if err != nil {
				return err
			}
			c, err := f.client(true)
			if err != nil {
				return err
			}
			rel, err := c.PublishRelease(cmd.Context(), tag, render.ReleaseNotes(tag, agents))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "release %s: %s (%d agents)\n", tag, rel.GetHTMLURL(), len(render.Released(agents)))
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&results, "release-json", "release.json", "release.json, or a directory of them")
	cmd.Flags().StringVar(&tag, "tag", "", "the git tag whose release to write")
	return cmd
}

func newGitHubNightlyCmd() *cobra.Command {
	var f gitHubFlags
	var runID int64
	var runURL, missing, results string
	cmd := &cobra.Command{
		Use:   "nightly --run-id ID",
		Short: "Open, update or close the issue that tracks a failing nightly release",
		Long: `Reads which build and merge jobs of the run failed, then keeps one issue
(label ` + gh.NightlyLabel + `) open while nightlies fail: opened on the first failure,
commented on each later one, closed with a comment when a nightly succeeds.
Run it as the last job of the nightly with permissions issues: write and
actions: read. --missing takes the matrix job's "missing" output, so agents
llm-agents no longer provides are listed too (and keep the issue open).
--release-json takes the run's release.json files: what changed in the agents
that released goes into the comment (or the new issue) on a failure, and into
the closing comment on the first success; a success with no issue open
writes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runID == 0 {
				id, err := strconv.ParseInt(os.Getenv("GITHUB_RUN_ID"), 10, 64)
				if err != nil {
					return fmt.Errorf("--run-id is required outside GitHub Actions")
				}
				runID = id
			}
			if runURL == "" {
				runURL = fmt.Sprintf("%s/%s/actions/runs/%d", githubServer(), f.repository, runID)
			}
			c, err := f.client(true)
			if err != nil {
				return err
			}
			gone, err := parseMissing(missing)
			if err != nil {
				return err
			}
			// No release.json (the path, or none given) means no agent released.
			agents, err := render.Read(results)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			run, err := c.RunOutcome(cmd.Context(), runID, runURL)
			if err != nil {
				return err
			}
			nightly := render.Nightly(run, gone, agents)
			tracked, err := c.TrackNightly(cmd.Context(), nightly)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if nightly.Failed {
				fmt.Fprintf(out, "nightly run %d failed: agents %s, jobs %s, missing %s", runID, joinOrNone(run.Failed), joinOrNone(run.FailedJobs), joinOrNone(gone))
			} else {
				fmt.Fprintf(out, "nightly run %d succeeded", runID)
			}
			if tracked.Action == "none" {
				fmt.Fprintln(out, "; no tracking issue open")
			} else {
				fmt.Fprintf(out, "; tracking issue #%d %s\n", tracked.Issue, tracked.Action)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().Int64Var(&runID, "run-id", 0, "the workflow run (default $GITHUB_RUN_ID)")
	cmd.Flags().StringVar(&runURL, "run-url", "", "link to the run (default from $GITHUB_SERVER_URL)")
	cmd.Flags().StringVar(&results, "release-json", "", "the run's release.json, or a directory of them (missing: no agent released), for what changed")
	cmd.Flags().StringVar(&missing, "missing", "", `agents llm-agents no longer provides: the JSON list "release matrix --json" writes as its "missing" output`)
	return cmd
}

// parseMissing reads the "missing" output of release matrix into one line
// per agent and system; empty means none.
func parseMissing(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var list []flake.Missing
	if err := json.Unmarshal([]byte(s), &list); err != nil {
		return nil, fmt.Errorf("--missing %q: want the JSON list release matrix --json writes as its missing output: %w", s, err)
	}
	out := make([]string, len(list))
	for i, m := range list {
		out[i] = m.String()
	}
	return out, nil
}

func joinOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func newGitHubSummaryCmd() *cobra.Command {
	var results string
	cmd := &cobra.Command{
		Use:   "summary --release-json PATH",
		Short: "Write the step summary of the run's release.json files (or to stdout outside Actions)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			agents, err := render.Read(results)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			if os.Getenv("GITHUB_STEP_SUMMARY") != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "%d agents released\n", len(render.Released(agents)))
			}
			return render.WriteStepSummary(cmd.OutOrStdout(), render.StepSummary(agents))
		},
	}
	cmd.Flags().StringVar(&results, "release-json", "release.json", "release.json, or a directory of them (missing: no agent released)")
	return cmd
}
