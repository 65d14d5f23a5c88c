package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// The end-to-end tests of this package drive the release binary through its
// command line, the interface users and workflows have, so that they keep
// holding however the packages behind it are arranged.

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// releaseBinary builds cmd/release once per test process.
func releaseBinary(t *testing.T) string {
	t.Helper()
	testenv.Require(t, "go")
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "release-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "release")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			binErr = &buildError{err: err, out: out.String()}
		}
	})
	if binErr != nil {
		t.Fatalf("go build ./cmd/release: %v", binErr)
	}
	return binPath
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// releaseCmd is the release binary with args and env (added to this
// process's environment), in its own process group so that a test can kill
// it, and everything it started, at once.
func releaseCmd(t *testing.T, ctx context.Context, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(ctx, releaseBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// execRelease runs the release binary to the end and returns everything it
// printed, stdout and stderr interleaved.
func execRelease(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	ctx := t.Context()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-20*time.Second))
		defer cancel()
	}
	cmd := releaseCmd(t, ctx, env, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}
