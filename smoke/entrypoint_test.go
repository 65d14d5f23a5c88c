package smoke

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// unknownUID is a uid no passwd file here names.
const unknownUID = 4242

// TestEntrypointNamesAnUnknownUID runs the entrypoint shim (lib/entrypoint.sh,
// with the host's sh and coreutils where Nix puts store paths) as a uid the
// host's /etc/passwd does not name, as Docker's --user starts an image, with
// /etc/passwd and /etc/group replaced (in a private mount namespace) by
// copies every uid may write, as the image makes them. The programs it runs
// find that user by uid, dynamically linked ones (whoami, id, getent,
// getpwuid through Python, which Node's os.userInfo() uses too, and ssh,
// all on the host's glibc) and a statically linked one (busybox, which reads
// /etc/passwd itself as Go's os/user does); without the shim they do not.
// The entry is added once, however often the shim runs, and nothing is
// preloaded.
func TestEntrypointNamesAnUnknownUID(t *testing.T) {
	testenv.Require(t, "setpriv", "unshare", "mount", "ssh", "python3", "getent")
	if os.Geteuid() != 0 {
		t.Skip("needs root to run as another uid")
	}
	if _, err := user.LookupId(strconv.Itoa(unknownUID)); err == nil {
		t.Fatalf("uid %d is in /etc/passwd; the test needs one that is not", unknownUID)
	}
	// The stand-ins' static busybox (scripts/setup-host.sh installs it).
	static := "/opt/agent-images-standin/" + map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[goruntime.GOARCH] + "-linux/busybox"
	if _, err := os.Stat(static); err != nil {
		msg := fmt.Sprintf("no static busybox at %s (run scripts/setup-host.sh)", static)
		if testenv.Strict() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	shim := renderShim(t)

	// The image's /etc files: copies of the host's, writable by every uid.
	etc := otherUserDir(t, 0o755)
	passwd, group := filepath.Join(etc, "passwd"), filepath.Join(etc, "group")
	for src, dst := range map[string]string{"/etc/passwd": passwd, "/etc/group": group} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o666); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dst, 0o666); err != nil {
			t.Fatal(err)
		}
	}

	// HOME belongs to root, as /home/agent belongs to the image's user; the
	// uid gets a private one under TMPDIR.
	home := otherUserDir(t, 0o700)
	tmp := otherUserDir(t, 0o1777)
	probe := `echo "whoami=$(whoami 2>&1)"; echo "id-un=$(id -un 2>&1)"; echo "id-gn=$(id -gn 2>&1)"
echo "getent=$(getent passwd "$(id -u)" 2>&1 | cut -d: -f1,6)"
echo "static=$(` + static + ` whoami 2>&1) $(` + static + ` id -gn 2>&1)"
echo "getpwuid=$(/usr/bin/python3 -c 'import os, pwd; p = pwd.getpwuid(os.getuid()); print(p.pw_name, p.pw_dir)' 2>&1 | tail -n 1)"
echo "ssh=$(ssh -G localhost 2>&1 | grep -e '^user ' -e 'uid')"
echo "preload=${LD_PRELOAD-}"
echo "home=$HOME"`
	run := func(args ...string) map[string]string {
		t.Helper()
		id := strconv.Itoa(unknownUID)
		// Bind the copies over /etc/passwd and /etc/group in a mount
		// namespace of this command only; the host's files stay as they are.
		inner := `mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && shift 2 && exec "$@"`
		cmd := exec.CommandContext(t.Context(), "unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", inner, "sh", passwd, group,
			"setpriv", "--reuid", id, "--regid", id, "--clear-groups", "--",
			"env", "-i", "PATH=/usr/bin:/bin", "HOME=" + home, "TMPDIR=" + tmp}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
		}
		got := map[string]string{}
		for _, l := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(l, "="); ok {
				got[k] = v
			}
		}
		return got
	}

	without := run("sh", "-c", probe)
	if without["whoami"] == strconv.Itoa(unknownUID) || strings.HasPrefix(without["ssh"], "user ") {
		t.Fatalf("without the entrypoint uid %d already has a name (%v): the test shows nothing", unknownUID, without)
	}
	got := run(shim, "sh", "-c", probe)
	t.Logf("without the entrypoint: %v", without)
	t.Logf("through it: %v", got)
	name := strconv.Itoa(unknownUID)
	privateHome := filepath.Join(tmp, "agent-home-"+name)
	for k, want := range map[string]string{
		"whoami":   name,
		"id-un":    name,
		"id-gn":    name,
		"getent":   name + ":" + privateHome,
		"static":   name + " " + name,
		"getpwuid": name + " " + privateHome,
		"ssh":      "user " + name,
		"preload":  "",
		"home":     privateHome,
	} {
		if got[k] != want {
			t.Errorf("through the entrypoint, %s = %q, want %q (without it: %q)", k, got[k], want, without[k])
		}
	}
	if node, err := exec.LookPath("node"); err == nil {
		out := run(shim, node, "-e", `const u = require("os").userInfo(); console.log("node=" + u.username + " " + u.homedir)`)
		if want := name + " " + privateHome; out["node"] != want {
			t.Errorf("through the entrypoint, Node's os.userInfo() = %q, want %q", out["node"], want)
		} else {
			t.Logf("through it, Node's os.userInfo(): %s", out["node"])
		}
	}
	// A second start finds the entry and adds none.
	run(shim, "true")
	for file, prefix := range map[string]string{passwd: name + ":x:" + name + ":", group: name + ":x:" + name + ":"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count("\n"+string(data), "\n"+prefix); n != 1 {
			t.Errorf("%s has %d entries starting %q after the shim ran three times, want 1:\n%s", file, n, prefix, data)
		}
	}
}

// renderShim writes lib/entrypoint.sh as lib/entrypoint.nix renders it, with
// host paths for the store paths and the default HOME layout.
func renderShim(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "lib", "entrypoint.sh"))
	if err != nil {
		t.Fatal(err)
	}
	var xdg []string
	for _, x := range XDGVars {
		xdg = append(xdg, x.Key+":"+x.Rel)
	}
	skeleton := []string{".config", ".cache", ".local", ".local/share", ".local/state"}
	script := strings.NewReplacer(
		"@shell@", "/bin/sh",
		"@coreutils@", "/usr",
		"@uid@", "1000",
		"@xdgVars@", strings.Join(xdg, " "),
		"@skeleton@", strings.Join(skeleton, "|"),
		"@skeletonList@", strings.Join(skeleton, " "),
		"@nixNote@", "",
	).Replace(string(src))
	if left := regexp.MustCompile(`@[A-Za-z]+@`).FindString(script); left != "" {
		t.Fatalf("lib/entrypoint.sh has a placeholder this test does not fill: %s (see lib/entrypoint.nix)", left)
	}
	p := filepath.Join(otherUserDir(t, 0o755), HomeShim)
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// otherUserDir is a directory of root's with mode, outside t.TempDir's
// private parent, so that another uid can reach it.
func otherUserDir(t *testing.T, mode os.FileMode) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "agent-images-entrypoint-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	return dir
}
