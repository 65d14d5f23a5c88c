package smoke

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nothingnesses/agent-images/internal/testenv"
)

// unknownUID is a uid no passwd file here names.
const unknownUID = 4242

// TestEntrypointNamesAnUnknownUID runs the entrypoint shim (lib/entrypoint.sh,
// with the host's sh and coreutils and Debian's nss_wrapper where Nix puts
// store paths) as a uid the host's /etc/passwd does not name, as Docker's
// --user starts an image: the programs it runs find that user by uid
// (whoami, id -un and -gn, getpwuid through Python, which Node's
// os.userInfo() uses too, and ssh), and without the shim they do not. The
// stand-in images cannot show this, since static busybox preloads nothing;
// this is the real library and the real shim.
func TestEntrypointNamesAnUnknownUID(t *testing.T) {
	testenv.Require(t, "setpriv", "ssh", "python3")
	if os.Geteuid() != 0 {
		t.Skip("needs root to run as another uid")
	}
	if _, err := user.LookupId(strconv.Itoa(unknownUID)); err == nil {
		t.Fatalf("uid %d is in /etc/passwd; the test needs one that is not", unknownUID)
	}
	libs, _ := filepath.Glob("/usr/lib/*/libnss_wrapper.so")
	if len(libs) == 0 {
		msg := "Debian's libnss-wrapper is not installed (run scripts/setup-host.sh)"
		if testenv.Strict() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	shim := renderShim(t, libs[0])

	// HOME belongs to root, as /home/agent belongs to the image's user; the
	// uid gets a private one under TMPDIR.
	home := otherUserDir(t, 0o700)
	tmp := otherUserDir(t, 0o1777)
	const probe = `echo "whoami=$(whoami 2>&1)"; echo "id-un=$(id -un 2>&1)"; echo "id-gn=$(id -gn 2>&1)"
echo "getpwuid=$(/usr/bin/python3 -c 'import os, pwd; p = pwd.getpwuid(os.getuid()); print(p.pw_name, p.pw_dir)' 2>&1 | tail -n 1)"
echo "ssh=$(ssh -G localhost 2>&1 | grep -e '^user ' -e 'uid')"
echo "home=$HOME"`
	run := func(args ...string) map[string]string {
		t.Helper()
		id := strconv.Itoa(unknownUID)
		cmd := exec.CommandContext(t.Context(), "setpriv", append([]string{"--reuid", id, "--regid", id, "--clear-groups", "--",
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
		"getpwuid": name + " " + privateHome,
		"ssh":      "user " + name,
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
}

// renderShim writes lib/entrypoint.sh as lib/entrypoint.nix renders it, with
// host paths for the store paths and the default HOME layout.
func renderShim(t *testing.T, nssWrapper string) string {
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
		"@nssWrapper@", nssWrapper,
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
