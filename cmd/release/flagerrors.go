package main

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/pipeline"
	"github.com/nothingnesses/agent-images/sign"
	"github.com/nothingnesses/agent-images/tags"
)

// flagOf is the flag that sets each field of the pipeline's options, a tag
// policy and prune's retention policy, as their errors name it.
var flagOf = map[string]string{
	"Jobs": "--jobs", "Registries": "--registry", "Runtime": "--runtime", "StagingKey": "--staging-key", "From": "--from",
	"Extra": "--tag", "GitTag": "--git-tag", "Preview": "--preview",
	"KeepDated": "--keep", "PreviewMaxAge": "--pr-max-age",
}

// asFlags words the library's option errors in err by the flags that set
// them, so that a user reads what to change on the command line.
func asFlags(err error) error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var errs []error
		for _, e := range joined.Unwrap() {
			errs = append(errs, asFlags(e))
		}
		return errors.Join(errs...)
	}
	var (
		oe *pipeline.OptionError
		pe *tags.PolicyError
	)
	switch {
	case errors.As(err, &oe) && flagOf[oe.Option] != "":
		return errors.New(oe.Named(flagOf[oe.Option]))
	case errors.As(err, &pe) && flagOf[pe.Field] != "":
		return fmt.Errorf("%s %w", flagOf[pe.Field], pe.Err)
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

// wordByFlags makes cmd and its subcommands refuse flag values with
// control characters and word their errors by flags.
func wordByFlags(cmd *cobra.Command) {
	var refused []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		f.Value = &lineValue{Value: f.Value, name: f.Name, refused: &refused}
	})
	if run := cmd.RunE; run != nil {
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			if len(refused) > 0 {
				var errs []error
				for _, name := range refused {
					errs = append(errs, fmt.Errorf("--%s: a value holds a control character (a newline?): give each value on one line, several separated by commas", name))
				}
				return errors.Join(errs...)
			}
			return asFlags(run(cmd, args))
		}
	}
	for _, sub := range cmd.Commands() {
		wordByFlags(sub)
	}
}

// lineValue is a flag value that takes no control character: a list flag
// reads its value as CSV, where a newline ends the record and drops the rest
// unseen. The value is not repeated in the refusal: it may hold a secret.
type lineValue struct {
	pflag.Value
	name    string
	refused *[]string
}

func (v *lineValue) Set(s string) error {
	if strings.ContainsFunc(s, unicode.IsControl) {
		*v.refused = append(*v.refused, v.name)
		return nil
	}
	return v.Value.Set(s)
}

// parseOverride parses NAME=REF as given to --override-input.
func parseOverride(s string) (name, ref string, err error) {
	name, ref, ok := strings.Cut(s, "=")
	if !ok || name == "" || ref == "" {
		// Not echoed: a malformed value may still hold a token.
		return "", "", errors.New("--override-input takes NAME=FLAKEREF, for example nixpkgs=path:./testdata/standin/nixpkgs; " +
			"one was given without a name, without '=' or without a reference")
	}
	return name, ref, nil
}

// parseRunners parses --runner SYSTEM=LABEL values.
func parseRunners(values []string) (map[flake.System]string, error) {
	out := map[flake.System]string{}
	for _, v := range values {
		sys, label, ok := strings.Cut(v, "=")
		if !ok || label == "" {
			return nil, fmt.Errorf("--runner %q: want SYSTEM=LABEL, for example aarch64-linux=ubuntu-24.04-arm", v)
		}
		s := flake.System(sys)
		if _, err := s.Platform(); err != nil {
			return nil, fmt.Errorf("--runner %q: %w", v, err)
		}
		out[s] = label
	}
	return out, nil
}
