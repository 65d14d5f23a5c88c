// Package nix runs the nix command: the one place the release tool shells out
// to Nix, so flake references, --override-input and error reporting are
// handled the same way for eval and build.
package nix

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strings"
)

// Flake names a flake and the inputs to override when using it.
type Flake struct {
	// Ref is a flake reference: ".", "path:/x", "github:o/r".
	Ref string
	// Overrides maps an input name to the flake reference that replaces it.
	Overrides map[string]string
}

// Installable returns REF#ATTR for an attribute path of the flake.
func (f Flake) Installable(attr string) string {
	ref := f.Ref
	if ref == "" {
		ref = "."
	}
	return ref + "#" + attr
}

// OverrideArgs returns the --override-input arguments, in a stable order.
func (f Flake) OverrideArgs() []string {
	names := make([]string, 0, len(f.Overrides))
	for n := range f.Overrides {
		names = append(names, n)
	}
	sort.Strings(names)
	var args []string
	for _, n := range names {
		args = append(args, "--override-input", n, f.Overrides[n])
	}
	return args
}

// ParseOverride parses NAME=REF as given to --override-input.
func ParseOverride(s string) (name, ref string, err error) {
	name, ref, ok := strings.Cut(s, "=")
	if !ok || name == "" || ref == "" {
		return "", "", fmt.Errorf("--override-input %q: want NAME=FLAKEREF, for example nixpkgs=path:./testdata/standin/nixpkgs", s)
	}
	return name, ref, nil
}

// Runner runs nix with arguments and returns its standard output.
type Runner func(ctx context.Context, args ...string) ([]byte, error)

// Run is the Runner that executes the nix binary on PATH.
func Run(ctx context.Context, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "nix", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, &Error{Args: args, Stderr: strings.TrimSpace(stderr.String()), Err: err}
		}
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("nix is not installed or not on PATH: install Nix with flakes enabled: %w", err)
		}
		return nil, err
	}
	return stdout.Bytes(), nil
}

// Error is a nix command that ran and failed.
type Error struct {
	Args   []string
	Stderr string
	Err    error
}

func (e *Error) Error() string {
	tail := e.Stderr
	// Nix prints its own error last; the build log before it can be long.
	if lines := strings.Split(tail, "\n"); len(lines) > 25 {
		tail = "...\n" + strings.Join(lines[len(lines)-25:], "\n")
	}
	return fmt.Sprintf("nix %s: %v\n%s", strings.Join(e.Args, " "), e.Err, tail)
}

func (e *Error) Unwrap() error { return e.Err }
