package flake

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/nothingnesses/agent-images/internal/redact"
	"github.com/nothingnesses/agent-images/record"
)

// Flake names a flake and the inputs to override when using it.
type Flake struct {
	// Ref is a flake reference: ".", "path:/x", "github:o/r".
	Ref string
	// Overrides maps an input name to the flake reference that replaces it.
	Overrides map[string]string
}

// Installable returns REF#ATTR for an attribute path of the flake.
func (f Flake) Installable(attr string) string { return cmp.Or(f.Ref, ".") + "#" + attr }

// String is the flake reference as it may be shown: without credentials or
// a query, which a remote reference can carry.
func (f Flake) String() string {
	return redact.URL(cmp.Or(f.Ref, "."))
}

// OverrideArgs returns the --override-input arguments, in a stable order.
func (f Flake) OverrideArgs() []string {
	var args []string
	for _, n := range slices.Sorted(maps.Keys(f.Overrides)) {
		args = append(args, "--override-input", n, f.Overrides[n])
	}
	return args
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
	if i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "error:") }); i >= 0 {
		lines = lines[i:min(len(lines), i+12)]
	} else if len(lines) > 12 {
		lines = lines[len(lines)-12:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

func (e *Error) Unwrap() error { return e.Err }

// Metadata is what `nix flake metadata` says of a flake with its overrides
// applied, read once per run: which commit it is, when its source was last
// modified and how every input is locked. No lock file is written.
type Metadata struct {
	// Revision is the commit of a git flake whose work tree is clean; empty
	// for a dirty tree, which no commit describes, or a flake not in git.
	Revision string
	// LastModified is the commit time of a git flake (of HEAD, for a dirty
	// work tree), the newest file's of a path flake.
	LastModified time.Time
	// Inputs is how the lock Nix resolved pins every input, an overridden
	// one too (by the revision or NAR hash Nix fetched), by its path from
	// the flake (see LockedInputs).
	Inputs map[string]LockedInput
}

// Metadata runs `nix flake metadata` once.
func (f Flake) Metadata(ctx context.Context, run Runner) (*Metadata, error) {
	out, err := run(ctx, append([]string{"flake", "metadata", "--json", "--no-write-lock-file", cmp.Or(f.Ref, ".")}, f.OverrideArgs()...)...)
	if err != nil {
		return nil, fmt.Errorf("locking the inputs of flake %s: %w", f, err)
	}
	var m struct {
		Revision     string          `json:"revision"`
		LastModified int64           `json:"lastModified"`
		Locks        json.RawMessage `json:"locks"`
	}
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("decoding the metadata of flake %s: %w", f, err)
	}
	if len(m.Locks) == 0 {
		return nil, fmt.Errorf("nix flake metadata of %s printed no locks", f)
	}
	if m.LastModified == 0 {
		return nil, fmt.Errorf("flake %s has no lastModified time", f)
	}
	inputs, err := LockedInputs(m.Locks)
	if err != nil {
		return nil, fmt.Errorf("nix flake metadata of %s: %w", f, err)
	}
	return &Metadata{Revision: m.Revision, LastModified: time.Unix(m.LastModified, 0).UTC(), Inputs: inputs}, nil
}

// LockedInput is how the lock pins one input, as a build record keeps it.
type LockedInput = record.Input

// LockedInputs lists every input a lock (flake.lock's JSON) pins, by its
// path from the flake ("nixpkgs", "llm-agents/nixpkgs"): what an evaluation
// of the flake reads. An input that follows another is listed where it is
// locked.
func LockedInputs(locks []byte) (map[string]LockedInput, error) {
	var l struct {
		Root  string `json:"root"`
		Nodes map[string]struct {
			Inputs map[string]json.RawMessage `json:"inputs"`
			Locked struct {
				Rev     string `json:"rev"`
				NarHash string `json:"narHash"`
			} `json:"locked"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(locks, &l); err != nil {
		return nil, fmt.Errorf("parsing the flake's lock: %w", err)
	}
	out := map[string]LockedInput{}
	// Nodes refer to each other by name, so the lock is a tree walked from
	// its root; a node two inputs share is listed under both paths.
	var walk func(node, path string)
	walk = func(node, path string) {
		for name, target := range l.Nodes[node].Inputs {
			var child string
			if json.Unmarshal(target, &child) != nil {
				continue // follows another input, which is listed itself
			}
			p := name
			if path != "" {
				p = path + "/" + name
			}
			if locked := l.Nodes[child].Locked; locked.Rev != "" || locked.NarHash != "" {
				out[p] = LockedInput{Rev: locked.Rev, NarHash: locked.NarHash}
			}
			walk(child, p)
		}
	}
	walk(l.Root, "")
	return out, nil
}
