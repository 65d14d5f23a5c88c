package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	ghauthn "github.com/google/go-containerregistry/pkg/authn/github"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"

	"github.com/nothingnesses/agent-images/gh"
	"github.com/nothingnesses/agent-images/internal/transport"
)

func newPruneCmd() *cobra.Command {
	var f gitHubFlags
	var registry string
	var agents []string
	var keep int
	var yes, insecure bool
	cmd := &cobra.Command{
		Use:   "prune --keep N [--agent a,b] [--registry R] [--yes]",
		Short: "Delete GHCR package versions no kept tag reaches",
		Long: `Lists every version of each agent's GHCR package and keeps what a tag
reaches: the tagged manifest, the children of a tagged index, and the cosign
signatures (.sig) and attestations (.att) of any of those. Dated tags
(YYYY-MM-DD) beyond the newest --keep no longer count. Everything else is
deleted, and only with --yes: without it the plan is printed and nothing
changes. Index children are never deleted while their index is kept.

Needs a token allowed to delete the packages (GITHUB_TOKEN with
packages: write, when the packages grant this repository admin access).`,
		Example: `  release prune --keep 14                      # show the plan for every agent
  release prune --keep 14 --agent pi --yes     # delete for one agent`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if registry == "" {
				if registry = defaultRegistry(); registry == "" {
					return fmt.Errorf("no registry to prune: %s", registryRequired)
				}
			}
			if err := checkRegistry(registry); err != nil {
				return err
			}
			var nameOpts []name.Option
			if insecure {
				nameOpts = append(nameOpts, name.Insecure)
			}
			prefix, err := name.NewRepository(registry, nameOpts...)
			if err != nil {
				return fmt.Errorf("--registry %q: %w", registry, err)
			}
			base, err := gh.PackageFor(prefix)
			if err != nil {
				return fmt.Errorf("--registry %q: %w", registry, err)
			}
			c, err := f.client(false)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if len(agents) == 0 {
				pkgs, err := c.ContainerPackages(ctx, base.Owner, base.Name+"/")
				if err != nil {
					return err
				}
				for _, p := range pkgs {
					agents = append(agents, strings.TrimPrefix(p, base.Name+"/"))
				}
			}
			ropts := []remote.Option{
				remote.WithTransport(transport.New()),
				remote.WithAuthFromKeychain(authn.NewMultiKeychain(authn.DefaultKeychain, ghauthn.Keychain)),
			}
			out := cmd.OutOrStdout()
			var failed []string
			for _, agent := range agents {
				repo, err := name.NewRepository(prefix.String()+"/"+agent, nameOpts...)
				if err != nil {
					return err
				}
				pkg, err := gh.PackageFor(repo)
				if err != nil {
					return err
				}
				plan, err := c.PlanPrune(ctx, pkg, keep, ropts...)
				if err != nil {
					fmt.Fprintf(out, "%s: %v\n", agent, err)
					failed = append(failed, agent)
					continue
				}
				printPlan(out, agent, plan)
				if !yes || len(plan.Delete) == 0 {
					continue
				}
				n, err := c.Prune(ctx, plan)
				fmt.Fprintf(out, "%s: deleted %d of %d versions\n", agent, n, len(plan.Delete))
				if err != nil {
					fmt.Fprintf(out, "%s: %v\n", agent, err)
					failed = append(failed, agent)
				}
			}
			if !yes {
				fmt.Fprintln(out, "dry run: nothing deleted; pass --yes to delete the versions above")
			}
			if len(failed) > 0 {
				return fmt.Errorf("pruning failed for %s", strings.Join(failed, ", "))
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&registry, "registry", "", "repository prefix, each agent in <registry>/<agent> (default under GitHub Actions: ghcr.io/<owner>/<repo>)")
	cmd.Flags().StringSliceVar(&agents, "agent", nil, "agents to prune (default every package under the registry prefix)")
	cmd.Flags().IntVar(&keep, "keep", 30, "dated tags (YYYY-MM-DD) to keep per agent, newest first")
	cmd.Flags().BoolVar(&yes, "yes", false, "delete; without it only the plan is shown")
	cmd.Flags().BoolVar(&insecure, "insecure", false, "plain-HTTP registry (local tests)")
	return cmd
}

func printPlan(w io.Writer, agent string, plan *gh.PrunePlan) {
	fmt.Fprintf(w, "%s: keep %d versions, delete %d\n", agent, len(plan.Keep), len(plan.Delete))
	if len(plan.ExpiredTags) > 0 {
		fmt.Fprintf(w, "  dated tags past --keep: %s\n", strings.Join(plan.ExpiredTags, " "))
	}
	for _, v := range plan.Delete {
		tags := ""
		if len(v.Tags) > 0 {
			tags = " (" + strings.Join(v.Tags, ", ") + ")"
		}
		fmt.Fprintf(w, "  delete %d %s%s\n", v.ID, v.Digest, tags)
	}
}
