package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// User is an unprivileged account the tests run rootless Podman as, with a
// Podman of its own (storage, configuration and runtime directory) under a
// temporary directory that goes when the test ends.
type User struct {
	Name     string
	UID, GID int
	// Dir belongs to the user; Home, the runtime directory and the Podman
	// storage are below it. A test puts the user's files (a project to
	// mount) here too.
	Dir  string
	Home string
	// Env is the whole environment its programs get.
	Env []string
}

// Prefix is the command line that runs a program as u with u.Env, for
// the smoke tests' rootless Podman: setpriv drops to the user's uid, gid and groups,
// env -i replaces the environment.
func (u *User) Prefix() []string {
	p := []string{"setpriv", "--reuid=" + strconv.Itoa(u.UID), "--regid=" + strconv.Itoa(u.GID), "--init-groups", "--", "env", "-i"}
	return append(p, u.Env...)
}

// Command is a command run as u, in dir.
func (u *User) Command(t testing.TB, dir, name string, args ...string) *exec.Cmd {
	t.Helper()
	full := append(append(u.Prefix()[1:], name), args...)
	cmd := exec.CommandContext(t.Context(), "setpriv", full...)
	cmd.Dir = dir
	return cmd
}

// Chown gives u the path (not recursively).
func (u *User) Chown(t testing.TB, path string) {
	t.Helper()
	if err := os.Chown(path, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
}

// subIDRange is how many subordinate ids each test user gets, the usual
// size: enough for images whose files belong to uids up to 65535.
const subIDRange = 65536

// containersConf is scripts/containers.conf for a rootless user: runc,
// cgroupfs (no systemd session here), file events, no ulimits to raise.
const containersConf = `[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
`

// RootlessUser returns an account with the given uid, ready for rootless
// Podman: the account that has the uid, or a new one named
// agent-images-<uid>; subordinate uid and gid ranges in /etc/subuid and
// /etc/subgid (added when it has none); and, under a fresh temporary
// directory, its HOME, XDG_RUNTIME_DIR and a Podman with vfs storage, runc
// and cgroupfs. Everything is created here and is safe to repeat; it needs
// root, and skips (or, when Strict, fails) without it.
func RootlessUser(t testing.TB, uid int) *User {
	t.Helper()
	if os.Geteuid() != 0 {
		msg := "creating users for rootless Podman needs root"
		if Strict() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	Require(t, "useradd", "setpriv", "newuidmap", "newgidmap", "podman")
	acct, err := ensureAccount(uid)
	if err != nil {
		t.Fatal(err)
	}
	gid, _ := strconv.Atoi(acct.Gid)
	for _, file := range []string{"/etc/subuid", "/etc/subgid"} {
		if err := ensureSubIDs(file, acct.Username, uid); err != nil {
			t.Fatal(err)
		}
	}

	// Short paths on purpose: Podman refuses a run root longer than 50
	// characters (its sockets live there), and a container's cleanup
	// process that fails on it leaves podman run polling for 20 seconds.
	top, err := os.MkdirTemp("/tmp", "aiu-")
	if err != nil {
		t.Fatal(err)
	}
	// The user must reach its directory; nothing else below top is shared.
	if err := os.Chmod(top, 0o755); err != nil {
		t.Fatal(err)
	}
	u := &User{Name: acct.Username, UID: uid, GID: gid, Dir: filepath.Join(top, "u")}
	u.Home = filepath.Join(u.Dir, "home")
	runtimeDir := filepath.Join(u.Dir, "run")
	for _, d := range []string{u.Dir, u.Home, runtimeDir, filepath.Join(u.Dir, "tmp")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		u.Chown(t, d)
	}
	storageConf := filepath.Join(top, "storage.conf")
	// Rootless Podman takes its image store from rootless_storage_path,
	// not graphroot.
	conf := fmt.Sprintf("[storage]\ndriver = \"vfs\"\nrunroot = %q\nrootless_storage_path = %q\n",
		filepath.Join(runtimeDir, "containers"), filepath.Join(u.Dir, "storage"))
	if err := os.WriteFile(storageConf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	containersConfPath := filepath.Join(top, "containers.conf")
	if err := os.WriteFile(containersConfPath, []byte(containersConf), 0o644); err != nil {
		t.Fatal(err)
	}
	u.Env = []string{
		"HOME=" + u.Home,
		"USER=" + u.Name,
		"LOGNAME=" + u.Name,
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"XDG_RUNTIME_DIR=" + runtimeDir,
		"TMPDIR=" + filepath.Join(u.Dir, "tmp"),
		"CONTAINERS_CONF=" + containersConfPath,
		"CONTAINERS_STORAGE_CONF=" + storageConf,
	}
	t.Cleanup(func() {
		// Rootless Podman leaves a pause process holding its user
		// namespace; it is ours, started by this user's podman.
		stopPauseProcess(t, filepath.Join(runtimeDir, "libpod", "tmp", "pause.pid"))
		if err := os.RemoveAll(top); err != nil {
			t.Logf("removing %s: %v", top, err)
		}
	})
	return u
}

// ensureAccount returns the account with uid, creating agent-images-<uid>
// (no home, no login shell, a group of its own) when there is none.
func ensureAccount(uid int) (*user.User, error) {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u, nil
	}
	name := fmt.Sprintf("agent-images-%d", uid)
	out, err := exec.Command("useradd", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin",
		"--uid", strconv.Itoa(uid), name).CombinedOutput()
	// Another test may have created it in the meantime: look again.
	if u, lerr := user.LookupId(strconv.Itoa(uid)); lerr == nil {
		return u, nil
	}
	if err != nil {
		return nil, fmt.Errorf("useradd %s (uid %d): %v: %s", name, uid, err, bytes.TrimSpace(out))
	}
	return nil, fmt.Errorf("useradd %s succeeded but uid %d is still unknown", name, uid)
}

// ensureSubIDs gives the account a range in file (/etc/subuid or
// /etc/subgid) unless it has one, by name or by uid. The range starts past
// every range already there, so it overlaps none. An exclusive lock on the
// file keeps two test processes from picking the same range.
func ensureSubIDs(file, name string, uid int) error {
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("locking %s: %w", file, err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing releases it too
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("reading %s: %w", file, err)
	}
	next := 100000
	for _, l := range strings.Split(string(data), "\n") {
		fields := strings.Split(strings.TrimSpace(l), ":")
		if len(fields) != 3 {
			continue
		}
		if fields[0] == name || fields[0] == strconv.Itoa(uid) {
			return nil
		}
		start, err1 := strconv.Atoi(fields[1])
		count, err2 := strconv.Atoi(fields[2])
		if err1 == nil && err2 == nil && start+count > next {
			next = start + count
		}
	}
	line := fmt.Sprintf("%s:%d:%d\n", name, next, subIDRange)
	if len(data) > 0 && data[len(data)-1] != '\n' {
		line = "\n" + line
	}
	if _, err := f.WriteString(line); err != nil {
		return fmt.Errorf("adding %s to %s: %w", strings.TrimSpace(line), file, err)
	}
	return nil
}

// stopPauseProcess ends the rootless pause process whose pid file is given,
// waiting a few seconds for it to go.
func stopPauseProcess(t testing.TB, pidFile string) {
	b, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		t.Logf("reading %s: %v", pidFile, err)
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		t.Logf("%s holds no pid: %q", pidFile, b)
		return
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return
	}
	for i := 0; i < 50; i++ {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}
