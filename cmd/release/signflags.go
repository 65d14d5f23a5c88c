package main

import (
	"github.com/spf13/cobra"

	"github.com/nothingnesses/agent-images/pipeline"
)

// signFlags configure signing. The signing issue fills this in with the
// cosign-backed signer; until then releases are not signed.
type signFlags struct{}

func (s *signFlags) register(cmd *cobra.Command) {}

// signer returns the pipeline's signer for these flags, nil for none.
func (s *signFlags) signer(cmd *cobra.Command, o pipeline.Options) (pipeline.Signer, error) {
	return nil, nil
}
