package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/gh"
	"github.com/nothingnesses/agent-images/internal/transport"
	"github.com/nothingnesses/agent-images/render"
	"github.com/nothingnesses/agent-images/retention"
)

func newPruneCmd() *cobra.Command {
	var f gitHubFlags
	var registries []string
	var agents []string
	var flake flakeFlags
	policy := retention.Default(time.Now())
	prMaxAge := ageValue{&policy.PreviewMaxAge}
	var yes, insecure bool
	cmd := &cobra.Command{
		Use:   "prune [--keep N] [--pr-max-age AGE] [--agent a,b | --flake F] [--registry R] [--yes]",
		Short: "Delete GHCR package versions the retention policy no longer keeps",
		Long: `Lists every version of each agent's GHCR package and sorts its tags into
classes: latest, version tags and the --tag extras are kept, the newest --keep dated tags
(YYYY-MM-DD) are kept and span the window, sha-<commit> and staging tags keep
their manifest only inside the window (a staging part also for a day, and
only while unmerged), pr-<N> previews until --pr-max-age. Every manifest a
kept tag reaches stays: the children of an index, the cosign signatures
(.sig) and attestations (.att) of any of those, OCI 1.1 referrers. The rest
is deleted, and only with --yes: without it the policy and each agent's plan,
grouped by reason, are printed and nothing changes.

Versions are deleted through GitHub's packages API, which knows GHCR alone.
--registry may list every registry a release goes to (repeated, or separated
with commas): each ghcr.io prefix is pruned, and any other is skipped with a
note (Docker Hub, Quay and others keep their own retention). With --api-url
pointing at another GitHub (Enterprise Server) every prefix is pruned.

The agents are those given with --agent, or else every agent the flake
releases (one nix eval, as release matrix). Each package is read through its
own endpoints: a workflow's GITHUB_TOKEN may not list the owner's packages
(GitHub answers 400), and a package of an agent the flake no longer has is
pruned only when named with --agent.

Needs a token allowed to delete the packages (GITHUB_TOKEN with
packages: write, when the packages grant this repository admin access).`,
		Example: `  release prune                                # show the plan for every agent of the flake
  release prune --keep 14 --agent pi --yes     # delete for one agent
  release prune --registry ghcr.io/me/agent-images,docker.io/me --yes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			policy.Now = time.Now()
			if err := policy.Validate(); err != nil {
				return err // worded by its flags, as every command's
			}
			registries, err := registriesOrDefault(registries, "no registry to prune:")
			if err != nil {
				return err
			}
			var nameOpts []name.Option
			if insecure {
				nameOpts = append(nameOpts, name.Insecure)
			}
			var prefixes []name.Repository
			var skipped []string
			for _, registry := range registries {
				prefix, err := name.NewRepository(strings.TrimSuffix(registry, "/"), nameOpts...)
				if err != nil {
					return fmt.Errorf("--registry %q: %w", registry, err)
				}
				// github.com's own API knows the packages of ghcr.io alone.
				if api := strings.TrimSuffix(f.apiURL, "/"); (api == "" || api == "https://api.github.com") && prefix.RegistryStr() != "ghcr.io" {
					skipped = append(skipped, strings.TrimSuffix(registry, "/"))
					continue
				}
				if _, err := gh.PackageFor(prefix); err != nil {
					return fmt.Errorf("--registry %q: %w", registry, err)
				}
				prefixes = append(prefixes, prefix)
			}
			out := cmd.OutOrStdout()
			for _, s := range skipped {
				fmt.Fprintf(out, "%s: not pruned: GitHub's packages API deletes from ghcr.io only; that registry keeps its own retention\n", s)
			}
			if len(prefixes) == 0 {
				return fmt.Errorf("no GHCR registry to prune among %s: prune deletes through GitHub's packages API, which knows ghcr.io alone", strings.Join(skipped, ", "))
			}
			c, err := f.client(false)
			if err != nil {
				return err
			}
			if len(agents) == 0 {
				if agents, err = flakeAgents(cmd, flake); err != nil {
					return err
				}
			}
			ropts := transport.NewRegistry().Options(cmd.Context())
			fmt.Fprintln(out, "retention policy:")
			if err := render.Policy(out, policy); err != nil {
				return err
			}
			fmt.Fprintln(out)
			var failed []string
			for _, prefix := range prefixes {
				if len(prefixes) > 1 {
					fmt.Fprintf(out, "== %s\n", prefix)
				}
				failed = append(failed, pruneRegistry(cmd, c, prefix, agents, policy, yes, ropts)...)
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
	cmd.Flags().StringSliceVar(&registries, "registry", nil, "repository prefix, each agent in <registry>/<agent> (default under GitHub Actions: ghcr.io/<owner>/<repo>); repeat it, or separate with commas: each ghcr.io prefix is pruned, others are skipped")
	cmd.Flags().StringSliceVar(&agents, "agent", nil, "agents to prune (default every agent the flake releases)")
	cmd.Flags().StringVar(&flake.flake, "flake", ".", "without --agent: the flake whose agents are pruned")
	cmd.Flags().StringArrayVar(&flake.overrides, "override-input", nil, "NAME=FLAKEREF passed to nix as --override-input (repeatable)")
	cmd.Flags().IntVar(&policy.KeepDated, "keep", policy.KeepDated, "dated tags (YYYY-MM-DD) to keep per agent, newest first: the window")
	cmd.Flags().Var(prMaxAge, "pr-max-age", "age after which a pr-<N> preview tag no longer keeps its manifest (days as 14d, or a duration as 36h)")
	cmd.Flags().StringSliceVar(&policy.Extra, "tag", nil, "the extra tags releases move (release --tag): kept whatever their shape, even one like a date, sha-<commit> or pr-<N>")
	cmd.Flags().BoolVar(&yes, "yes", false, "delete; without it only the plan is shown")
	cmd.Flags().BoolVar(&insecure, "insecure", false, "plain-HTTP registry (local tests)")
	return cmd
}

// flakeAgents are the agents the flake releases, from one evaluation.
func flakeAgents(cmd *cobra.Command, f flakeFlags) ([]string, error) {
	fl, err := f.nixFlake()
	if err != nil {
		return nil, err
	}
	targets, err := flake.Load(cmd.Context(), fl)
	if err != nil {
		return nil, fmt.Errorf("which agents to prune: %w (or name them with --agent)", err)
	}
	agents := flake.Agents(targets)
	if len(agents) == 0 {
		return nil, fmt.Errorf("flake %s releases no agent: name the packages to prune with --agent", fl)
	}
	return agents, nil
}

// pruneRegistry prunes each agent under prefix and returns the agents that
// failed, as prefix/agent when pruning several registries would leave it
// unclear.
func pruneRegistry(cmd *cobra.Command, c *gh.Client, prefix name.Repository, agents []string, policy retention.Policy, yes bool, ropts []remote.Option) []string {
	ctx, out := cmd.Context(), cmd.OutOrStdout()
	var failed []string
	for _, agent := range agents {
		repo := prefix.Registry.Repo(prefix.RepositoryStr(), agent)
		pkg, _ := gh.PackageFor(repo) // the prefix was checked: it has an owner
		versions, err := c.PackageVersions(ctx, pkg)
		var plan *retention.Plan
		if err == nil {
			plan, err = retention.Decide(ctx, repo, versions, policy, ropts...)
		}
		if err != nil {
			fmt.Fprintf(out, "%s: %v\n", agent, err)
			failed = append(failed, repo.String())
			continue
		}
		render.Plan(out, agent, plan)
		if !yes || len(plan.Delete) == 0 {
			continue
		}
		n, err := c.DeleteVersions(ctx, pkg, plan.Deletions())
		fmt.Fprintf(out, "%s: deleted %d of %d versions\n", agent, n, len(plan.Delete))
		if err != nil {
			fmt.Fprintf(out, "%s: %v\n", agent, err)
			failed = append(failed, repo.String())
		}
	}
	return failed
}

// ageValue is a flag holding an age written as days ("14d") or a Go
// duration ("36h").
type ageValue struct{ d *time.Duration }

func (a ageValue) String() string {
	if a.d == nil {
		return ""
	}
	return retention.FormatAge(*a.d)
}

func (a ageValue) Set(s string) error {
	d, err := retention.ParseAge(s)
	if err != nil {
		return err
	}
	*a.d = d
	return nil
}

func (ageValue) Type() string { return "age" }
