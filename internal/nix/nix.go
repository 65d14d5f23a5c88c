// Package nix runs the nix command: the one place the release tool shells out
// to Nix, so flake references, --override-input and error reporting are
// handled the same way for eval and build.
package nix

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strings"

	"github.com/nothingnesses/agent-images/internal/redact"
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

// String is the flake reference as it may be shown: without credentials or
// a query, which a remote reference can carry.
func (f Flake) String() string {
	if f.Ref == "" {
		return "."
	}
	return redact.URL(f.Ref)
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
		// Not echoed: a malformed value may still hold a token.
		return "", "", errors.New("--override-input takes NAME=FLAKEREF, for example nixpkgs=path:./testdata/standin/nixpkgs; " +
			"one was given without a name, without '=' or without a reference")
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
			// Nix quotes the references it was given in its errors, and
			// an override can hold a token or a private path.
			msg := redact.FlakeText(strings.TrimSpace(stderr.String()), secretRefs(args)...)
			return nil, &Error{Args: args, Stderr: msg, Err: err}
		}
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("nix is not installed or not on PATH: install Nix with flakes enabled: %w", err)
		}
		return nil, err
	}
	return stdout.Bytes(), nil
}

// secretRefs are the references of a nix command line whose secret parts
// must not reach an error: every --override-input, and the flake itself
// when it is remote (a local flake's path is what its user needs to see).
func secretRefs(args []string) []string {
	var refs []string
	for i, a := range args {
		var flake string
		switch {
		case a == "--override-input" && i+2 < len(args):
			refs = append(refs, args[i+2])
		case a == "metadata" && i+1 < len(args):
			flake = args[i+1]
		case strings.Contains(a, "#") && !strings.HasPrefix(a, "-"):
			flake, _, _ = strings.Cut(a, "#")
		}
		if flake != "" && redact.URL(flake) != flake {
			refs = append(refs, flake)
		}
	}
	return refs
}

// Lock is the flake's lock as Nix resolves it with the overrides applied
// (`nix flake metadata`): flake.lock's JSON, in which every input, an
// overridden one too, is pinned by the revision or NAR hash Nix fetched.
// No lock file is written.
func (f Flake) Lock(ctx context.Context, run Runner) ([]byte, error) {
	ref := f.Ref
	if ref == "" {
		ref = "."
	}
	args := append([]string{"flake", "metadata", "--json", "--no-write-lock-file", ref}, f.OverrideArgs()...)
	out, err := run(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("locking the inputs of flake %s: %w", f, err)
	}
	var meta struct {
		Locks json.RawMessage `json:"locks"`
	}
	if err := json.Unmarshal(out, &meta); err != nil || len(meta.Locks) == 0 {
		return nil, fmt.Errorf("nix flake metadata of %s printed no locks (%v)", f, err)
	}
	return meta.Locks, nil
}

// Error is a nix command that ran and failed.
type Error struct {
	Args   []string
	Stderr string
	Err    error
}

func (e *Error) Error() string {
	return fmt.Sprintf("nix %s: %v: %s", e.Args[0], e.Err, e.Reason())
}

// Reason is what Nix said went wrong: its error lines, or the end of its
// output when it printed none. Warnings and the build log are left out.
func (e *Error) Reason() string {
	lines := strings.Split(e.Stderr, "\n")
	var errs []string
	for i, l := range lines {
		if strings.HasPrefix(l, "error:") {
			errs = append(errs, strings.Join(lines[i:min(len(lines), i+12)], "\n"))
			break
		}
	}
	if len(errs) == 0 && len(lines) > 12 {
		lines = lines[len(lines)-12:]
		errs = lines
	} else if len(errs) == 0 {
		errs = lines
	}
	return strings.TrimSpace(strings.Join(errs, "\n"))
}

func (e *Error) Unwrap() error { return e.Err }
