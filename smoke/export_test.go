package smoke

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// WithRunFlags passes more flags to every container run of the checks, as
// a user's command line would: --user, --userns, -v, --workdir. The checks
// add their own --rm, --network none, --pull never, platform and entrypoint.
func WithRunFlags(flags ...string) Option {
	return func(o *options) error {
		for _, f := range flags {
			if f == "--entrypoint" || strings.HasPrefix(f, "--entrypoint=") {
				return fmt.Errorf("WithRunFlags(%q): the checks choose the entrypoint", f)
			}
		}
		o.runFlags = append(o.runFlags, flags...)
		return nil
	}
}

// WithLogf receives progress lines (loading, running); Test logs nothing otherwise.
func WithLogf(f func(string, ...any)) Option {
	return func(o *options) error { o.logf = f; return nil }
}

// rootlessRuntime is podman run as prefix followed by its own arguments,
// e.g. setpriv --reuid 1001 ... -- env HOME=... to use the rootless Podman
// of another user.
func rootlessRuntime(prefix ...string) (Runtime, error) {
	if len(prefix) == 0 {
		return nil, errors.New("rootlessRuntime: empty prefix")
	}
	if _, err := exec.LookPath(prefix[0]); err != nil {
		return nil, fmt.Errorf("%s (the command prefix) is not installed: %w", prefix[0], err)
	}
	rt := &cliRuntime{bin: "podman", pull: true, prefix: prefix}
	if err := rt.probe(); err != nil {
		return nil, err
	}
	return rt, nil
}

// AgentDefaults is what every default release image must satisfy: it runs
// mainProgram as user agent (1000:1000) in /workspace with HOME /home/agent.
func AgentDefaults(mainProgram string) Expect {
	return UserDefaults(mainProgram, "agent", 1000, 1000, "/home/agent", "/workspace")
}

// AnyUser is what an image promises whatever uid it runs as (docker run
// --user, podman run --userns=keep-id --user): the process is not root, works
// in workingDir, has a user and group name, and can write (and owns) $HOME,
// the XDG directories and workingDir; /tmp is writable; a directory mounted
// below the image's HOME stays reachable below $HOME. Identity and exact
// paths are not checked: they depend on the uid.
func AnyUser(workingDir string) Expect {
	e := Expect{
		WorkingDir: workingDir,
		NonRoot:    true,
		Tmp:        true,
		UserEntry:  true,
		Writable:   []string{"$HOME"},
		HomeMount:  ".config/agent-images-smoke",
	}
	for _, x := range XDGVars {
		e.Writable = append(e.Writable, "$"+x.Key)
	}
	if workingDir != "" {
		e.Writable = append(e.Writable, workingDir)
	}
	return e
}

// Skipped returns the checks that could not run, each with its reason.
func (r *Report) Skipped() []Result { return r.filter(Skip) }

// String is a human summary for test failures: one line per check,
// failures and skips first.
func (r *Report) String() string {
	var b strings.Builder
	pass := len(r.Results) - len(r.Failed()) - len(r.Skipped())
	fmt.Fprintf(&b, "%s/%s: %s mode, %d passed, %d failed, %d skipped", r.Platform.OS, r.Platform.Architecture,
		r.Mode, pass, len(r.Failed()), len(r.Skipped()))
	if r.Runner != "" {
		fmt.Fprintf(&b, " (%s)", r.Runner)
	}
	if r.Reason != "" {
		fmt.Fprintf(&b, " (static only: %s)", r.Reason)
	}
	b.WriteByte('\n')
	for _, s := range []Status{Fail, Skip, Pass} {
		for _, res := range r.filter(s) {
			b.WriteString("  " + res.String() + "\n")
		}
	}
	return b.String()
}
