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
