package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nothingnesses/agent-images/pipeline"
	"github.com/nothingnesses/agent-images/tags"
)

// optionFlags are the flags that set each pipeline option.
var optionFlags = map[string]string{
	"Jobs":       "--jobs",
	"Registries": "--registry",
	"Runtime":    "--runtime",
	"StagingKey": "--staging-key",
	"From":       "--from",
}

// tagFlags are the flags that set each field of a tag policy.
var tagFlags = map[string]string{"Extra": "--tag", "GitTag": "--git-tag", "Preview": "--preview"}

// asFlags words the library's option errors in err by the flags that set
// them, so that a user reads what to change on the command line.
func asFlags(err error) error {
	if err == nil {
		return nil
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var errs []error
		for _, e := range joined.Unwrap() {
			errs = append(errs, asFlags(e))
		}
		return errors.Join(errs...)
	}
	var oe *pipeline.OptionError
	if errors.As(err, &oe) {
		if flag, ok := optionFlags[oe.Option]; ok {
			return errors.New(oe.Named(flag))
		}
	}
	var pe *tags.PolicyError
	if errors.As(err, &pe) {
		if flag, ok := tagFlags[pe.Field]; ok {
			return fmt.Errorf("%s %w", flag, pe.Err)
		}
	}
	if errors.Is(err, pipeline.ErrNoSigner) {
		return errors.New("pushing needs a signer: pass --key or run keyless, or --sign=false to publish unsigned on purpose")
	}
	return err
}

// wordByFlags makes cmd and its subcommands word their errors by flags.
func wordByFlags(cmd *cobra.Command) {
	if run := cmd.RunE; run != nil {
		cmd.RunE = func(cmd *cobra.Command, args []string) error { return asFlags(run(cmd, args)) }
	}
	for _, sub := range cmd.Commands() {
		wordByFlags(sub)
	}
}
