package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nothingnesses/agent-images/changes"
	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/pipeline"
	"github.com/nothingnesses/agent-images/publish"
	"github.com/nothingnesses/agent-images/record"
)

// flags every command that reads the flake shares.
type flakeFlags struct {
	flake     string
	overrides []string
	agents    []string
	all       bool
	systems   []string
}

func (f *flakeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.flake, "flake", ".", "flake to release from")
	cmd.Flags().StringArrayVar(&f.overrides, "override-input", nil, "NAME=FLAKEREF passed to nix as --override-input (repeatable)")
	cmd.Flags().StringSliceVar(&f.agents, "agent", nil, "agents to release, comma-separated")
	cmd.Flags().StringSliceVar(&f.systems, "system", nil, "systems to build (x86_64-linux, aarch64-linux), comma-separated; default all")
}

func (f *flakeFlags) nixFlake() (flake.Flake, error) {
	fl := flake.Flake{Ref: f.flake, Overrides: map[string]string{}}
	for _, o := range f.overrides {
		n, ref, err := parseOverride(o)
		if err != nil {
			return fl, err
		}
		fl.Overrides[n] = ref
	}
	return fl, nil
}

// command is which of release, release build and release merge a set of
// release flags belongs to.
type command int

const (
	commandRelease command = iota
	commandBuild
	commandMerge
)

// releaseFlags are the flags of release, release build and release merge:
// most set the pipeline's options as they are, the rest are read by
// options.
type releaseFlags struct {
	flakeFlags
	o             pipeline.Options
	command       command
	compression   string
	sizeThreshold string
	output        string
	signFlags     signFlags
}

func (f *releaseFlags) register(cmd *cobra.Command, c command) {
	f.command = c
	f.flakeFlags.register(cmd)
	if c == commandRelease {
		cmd.Flags().BoolVar(&f.all, "all", false, "release every agent of the flake")
		cmd.Flags().BoolVar(&f.o.Rebuild, "rebuild", false, "build and publish even an agent whose published index was built from the same derivations (a new index, with this commit's annotations and tags)")
	}
	cmd.Flags().IntVar(&f.o.Jobs, "jobs", 0, "targets built, tested and pushed at once (default: number of CPUs)")
	if c != commandMerge {
		cmd.Flags().StringVar(&f.compression, "compression", string(flake.Gzip), "how image layers are compressed: gzip, or zstd (smaller; pulled by Docker 23+, Podman 4.3+ and containerd 1.5+)")
		cmd.Flags().StringVar(&f.o.LayerCache, "layer-cache", "", "where packed layers are kept between runs, each store path packed once (default: $"+flake.CacheEnv+", else $XDG_CACHE_HOME/agent-images/layers)")
	}
	switch c {
	case commandMerge:
		// merge always pushes and signs; --push is accepted for old callers.
		cmd.Flags().BoolVar(&f.o.Push, "push", true, "ignored: merge always pushes (and signs, unless --sign=false)")
		_ = cmd.Flags().MarkHidden("push")
		cmd.Flags().StringVar(&f.o.From, "from", "", "`DIR` of build records of release build (its --output files), or one such file: merge accepts only the parts they name")
	case commandBuild:
		cmd.Flags().BoolVar(&f.o.Push, "push", false, "push each image by digest under its staging tag (required, unless --dry-run)")
	default:
		cmd.Flags().BoolVar(&f.o.Push, "push", false, "push to --registry (without it the release lands in --layout)")
	}
	if c != commandBuild {
		cmd.Flags().BoolVar(&f.o.AllowRollback, "allow-rollback", false, "move latest, the version and the date tag even to an index older than the one they point at (a deliberate revert)")
	}
	usage := "repository prefix; each agent goes to <registry>/<agent> (default under GitHub Actions: ghcr.io/<owner>/<repo>). Repeat it, or separate with commas, to publish to several registries: the same index in each, each signed and tagged on its own"
	switch c {
	case commandBuild:
		usage += "; build stages in the first"
	case commandMerge:
		usage += "; merge takes the parts staged in the first and copies them to the others"
	}
	cmd.Flags().StringSliceVar(&f.o.Registries, "registry", nil, usage)
	cmd.Flags().BoolVar(&f.o.Insecure, "insecure", false, "allow a plain-HTTP registry")
	cmd.Flags().StringVar(&f.o.Runtime, "runtime", "", "container runtime for smoke tests: podman, docker, or none for static checks only (default: podman, else docker)")
	if c != commandBuild {
		cmd.Flags().StringSliceVar(&f.o.ExtraTags, "tag", nil, "more tags to move besides latest, the version, the date and sha-<commit> (not in the reserved sha256-* and staging-* spaces)")
		cmd.Flags().StringVar(&f.o.GitTag, "git-tag", "", "the git tag being released, e.g. v1.2.3: tagged itself and, for a semantic version, as 1.2.3, 1.2 and 1 (each moved only forward; a pre-release moves neither the series nor latest)")
		cmd.Flags().StringVar(&f.sizeThreshold, "size-threshold", "", "in the report of what changed since latest, flag every platform that grew by more than this percentage of its previous size, e.g. 10%")
		cmd.Flags().IntVar(&f.o.Preview, "preview", 0, "a preview of pull request `N`: move the tag pr-N only, never latest, a version, a date or sha-")
	}
	if c == commandBuild {
		cmd.Flags().StringVar(&f.output, "output", "", "write the build record (per image: digest, derivation, smoke result, signature) to this JSON file, for release merge --from")
	} else {
		cmd.Flags().StringVar(&f.output, "output", "", "write the release report (digests, sizes, tags, smoke results) to this JSON file")
	}
	cmd.Flags().BoolVar(&f.o.DryRun, "dry-run", false, "show what would be pushed, signed and tagged, changing nothing in any registry or layout")
	cmd.Flags().StringVar(&f.o.LayoutDir, "layout", filepath.Join("dist", "oci"), "OCI image layout a release without --push writes to")
	cmd.Flags().StringVar(&f.o.WorkDir, "work-dir", filepath.Join("dist", "work"), "where nix out-links and image archives are kept")
	cmd.Flags().StringVar(&f.o.StagingKey, "staging-key", "", "key of split-mode staging tags (default: sha-<commit>, or GITHUB_RUN_ID, or local)")
	cmd.Flags().StringVar(&f.o.Commit, "commit", "", "commit of this repository for annotations and the sha- tag (default: GITHUB_SHA, or the flake's clean git HEAD)")
	cmd.Flags().StringVar(&f.o.Source, "source", "", "web address of the repository releasing, for the index's source annotation and the provenance (default: GITHUB_SERVER_URL/GITHUB_REPOSITORY under Actions, else the flake's git origin)")
	f.signFlags.register(cmd)
}

// options turns the flags into the pipeline's options. Everything the
// flags alone can get wrong fails here, before the flake is read.
func (f *releaseFlags) options() (pipeline.Options, error) {
	o := f.o
	var err error
	if o.Flake, err = f.nixFlake(); err != nil {
		return o, err
	}
	if !f.all && len(f.agents) == 0 && f.command == commandRelease {
		return o, fmt.Errorf("name the agents to release with --agent a,b, or release every agent with --all")
	}
	if f.all && len(f.agents) > 0 {
		return o, fmt.Errorf("--all and --agent %s conflict: use one", strings.Join(f.agents, ","))
	}
	if f.command == commandBuild && !o.Push && !o.DryRun {
		return o, fmt.Errorf("release build stages images in a registry for release merge: add --push and --registry (or run `release` without a subcommand for a local release)")
	}
	if f.output != "" {
		if err := checkOutput(f.output); err != nil {
			return o, err
		}
	}
	if o.Compression, err = flake.ParseCompression(cmp.Or(f.compression, string(flake.Gzip))); err != nil {
		return o, fmt.Errorf("--compression: %w", err)
	}
	if o.SizeThreshold, err = sizeThreshold(f.sizeThreshold); err != nil {
		return o, err
	}
	if o.Source == "" {
		o.Source = sourceOf(o.Flake)
	} else if err := publish.ValidateSource(o.Source); err != nil {
		return o, fmt.Errorf("--source: %w", err)
	}
	o.Agents, o.Systems = f.agents, flake.ParseSystems(f.systems)
	o.Push = o.Push || f.command != commandRelease
	o.Commit = cmp.Or(o.Commit, os.Getenv("GITHUB_SHA")) // else the flake's (readFlake)
	o.Run, o.Now = runFromEnv(), time.Now
	if !o.Push && len(o.Registries) == 0 {
		// A local release needs none.
		if d := defaultRegistry(); d != "" {
			o.Registries = []string{d}
		}
		return o, nil
	}
	o.Registries, err = registriesOrDefault(o.Registries, "--push needs --registry, the repository prefix agents are pushed under:")
	return o, err
}

// sizeThreshold reads --size-threshold, a percentage such as 10%; nil when
// none is given.
func sizeThreshold(s string) (*float64, error) {
	if s == "" {
		return nil, nil
	}
	fraction, err := changes.ParseThreshold(s)
	if err != nil {
		return nil, fmt.Errorf("--size-threshold: %w", err)
	}
	return &fraction, nil
}

// checkOutput fails when a report could not be written to path, so that a
// typo is found before a release, not after it published.
func checkOutput(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("--output %s: its directory %s does not exist: create it first", path, dir)
	}
	if !st.IsDir() {
		return fmt.Errorf("--output %s: %s is not a directory", path, dir)
	}
	if st, err := os.Lstat(path); err == nil && st.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("--output %s is a symbolic link: the report is not written through one; remove it or give another path", path)
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("--output %s is a directory: give a file name", path)
	}
	probe, err := os.CreateTemp(dir, ".release-output-*")
	if err != nil {
		return fmt.Errorf("--output %s: cannot write in %s: %w", path, dir, err)
	}
	probe.Close()
	return os.Remove(probe.Name())
}

// runFromEnv is the GitHub Actions run and attempt this is, or nil outside
// Actions.
func runFromEnv() *record.Run {
	id := os.Getenv("GITHUB_RUN_ID")
	attempt, err := strconv.Atoi(os.Getenv("GITHUB_RUN_ATTEMPT"))
	if id == "" || err != nil {
		return nil
	}
	return &record.Run{ID: id, Attempt: attempt}
}

// readFlake reads the flake's metadata into o, once for the run. A commit
// no flag or environment named is the flake's own: the HEAD of a git work
// tree that is clean (a dirty tree has no commit that describes it).
// Without one, split mode's staging tags take the Actions run's id.
func readFlake(ctx context.Context, o *pipeline.Options) error {
	m, err := o.Flake.Metadata(ctx, flake.Run)
	if err != nil {
		return err
	}
	o.Metadata = m
	if o.Commit == "" {
		o.Commit = m.Revision
	}
	if o.StagingKey == "" && o.Commit == "" {
		o.StagingKey = os.Getenv("GITHUB_RUN_ID")
	}
	return nil
}

func newRootCmd() *cobra.Command {
	var f releaseFlags
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Build, smoke-test and publish agent images from a Nix flake",
		Long: `release builds the agent images of a flake (one per agent and system), smoke-tests
each in a container runtime, and publishes them: per-arch images by digest, then a
multi-arch index per agent, then signatures, and the tags last.

Without --push the result is written to an OCI image layout (--layout).`,
		Example: `  release --agent pi                          # build, test, write dist/oci
  release --agent pi,codex --push --registry ghcr.io/me/my-images
  release --agent pi --push --registry ghcr.io/me/my-images --registry docker.io/me
  release --all --push --output release.json   # under GitHub Actions`,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRelease(cmd, &f, pipeline.Release)
		},
	}
	f.register(cmd, commandRelease)
	cmd.AddCommand(
		newMatrixCmd(),
		newBuildCmd(),
		newMergeCmd(),
		newKeygenCmd(),
		newPruneCmd(),
		newGitHubCmd(),
		newVerifyCmd(),
		newDiffCmd(),
		newPolicyCmd(),
	)
	wordByFlags(cmd)
	return cmd
}

func newBuildCmd() *cobra.Command {
	var f releaseFlags
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Split mode, first half: build, test and stage per-arch images on this runner",
		Long: `build builds and smoke-tests the selected agents for the selected systems, pushes
each per-arch image that passed by digest (a staging tag derived from --staging-key
keeps it until merge), and signs and attests it in this job. The build record it
writes with --output (and, under GitHub Actions, as the build-record step output)
is what "release merge --from" accepts parts from, by digest and signature.`,
		Example: `  release build --agent pi --system aarch64-linux --push --registry ghcr.io/me/agent-images --output build-pi-aarch64-linux.json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBuild(cmd, &f)
		},
	}
	f.register(cmd, commandBuild)
	return cmd
}

func newMergeCmd() *cobra.Command {
	var f releaseFlags
	cmd := &cobra.Command{
		Use:   "merge",
		Short: "Split mode, second half: assemble staged per-arch images into indexes, sign, tag",
		Long: `merge takes each selected agent's per-arch images from the build records of
"release build" (--from) and accepts one only when this flake builds the same
derivation at the same commit, the registry holds the recorded digest under its
staging tag, and its signature and attestations verify against the identity this
merge signs with. Then it pushes the multi-arch index, signs the index and moves
the tags. An agent with a refused part moves nothing. merge always pushes and
signs: --sign=false publishes unsigned on purpose.`,
		Example: `  release merge --agent pi --registry ghcr.io/me/agent-images --from build-records/ --key cosign.key`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRelease(cmd, &f, pipeline.Merge)
		},
	}
	f.register(cmd, commandMerge)
	return cmd
}
