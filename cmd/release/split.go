package main

import (
	"github.com/spf13/cobra"

	"github.com/nothingnesses/agent-images/pipeline"
)

func newBuildCmd() *cobra.Command {
	var f releaseFlags
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Split mode, first half: build, test and stage per-arch images on this runner",
		Long: `build builds and smoke-tests the selected agents for the selected systems and pushes
each per-arch image by digest under a staging tag derived from --staging-key, so
that "release merge" in another job finds them without job outputs.`,
		Example: `  release build --agent pi --system aarch64-linux --push --registry ghcr.io/me/agent-images`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := f.options(cmd)
			if err != nil {
				return err
			}
			return runRelease(cmd, &f, o, pipeline.BuildStaged)
		},
	}
	f.register(cmd, false)
	return cmd
}

func newMergeCmd() *cobra.Command {
	var f releaseFlags
	cmd := &cobra.Command{
		Use:   "merge",
		Short: "Split mode, second half: assemble staged per-arch images into indexes, sign, tag",
		Long: `merge finds the per-arch images "release build" staged for each selected agent,
checks none is missing or stale, pushes the multi-arch index, signs, and moves the tags.`,
		Example: `  release merge --agent pi --registry ghcr.io/me/agent-images`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := f.options(cmd)
			if err != nil {
				return err
			}
			return runRelease(cmd, &f, o, pipeline.Merge)
		},
	}
	f.register(cmd, false)
	return cmd
}
