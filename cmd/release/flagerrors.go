package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nothingnesses/agent-images/pipeline"
	"github.com/nothingnesses/agent-images/sign"
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
	switch {
	case errors.Is(err, pipeline.ErrNoSigner):
		return errors.New("pushing needs a signer: pass --key or run keyless, or --sign=false to publish unsigned on purpose")
	case errors.Is(err, sign.ErrNoIdentity):
		return fmt.Errorf("%w: pass --key (a file, env://VAR or a KMS URI), run under GitHub Actions "+
			"with `permissions: id-token: write` for keyless signing, or pass --sign=false", err)
	case errors.Is(err, sign.ErrNoSigner):
		return fmt.Errorf("%w: pass --key cosign.pub, or %s", err, keylessHint)
	case errors.Is(err, sign.ErrKeyAndKeyless):
		return fmt.Errorf("pass either --key or --certificate-identity/--certificate-oidc-issuer, not both: %w", err)
	case errors.Is(err, sign.ErrNoCertIdentity), errors.Is(err, sign.ErrNoCertIssuer):
		return fmt.Errorf("%w: pass %s", err, keylessHint)
	}
	return err
}

// keylessHint names what keyless verification needs.
const keylessHint = "--certificate-identity (the signing workflow, e.g. " +
	"https://github.com/OWNER/REPO/.github/workflows/release.yml@refs/heads/main) and --certificate-oidc-issuer " +
	"(https://token.actions.githubusercontent.com for GitHub Actions)"

// wordByFlags makes cmd and its subcommands word their errors by flags.
func wordByFlags(cmd *cobra.Command) {
	if run := cmd.RunE; run != nil {
		cmd.RunE = func(cmd *cobra.Command, args []string) error { return asFlags(run(cmd, args)) }
	}
	for _, sub := range cmd.Commands() {
		wordByFlags(sub)
	}
}
