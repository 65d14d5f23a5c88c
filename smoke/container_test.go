package smoke

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopDocker()
	os.Exit(code)
}

// podman returns the required runtime.
func podman(t *testing.T) Runtime {
	t.Helper()
	testenv.Require(t, "podman")
	testenv.Setenv(t)
	rt, err := NewRuntime("podman")
	if err != nil {
		t.Fatalf("NewRuntime(podman): %v", err)
	}
	return rt
}

var docker struct {
	once   sync.Once
	cmd    *exec.Cmd
	dir    string
	host   string
	reason string // why docker is not available
}

// dockerRuntime starts a private dockerd once for the package and returns it
// as a runtime. Docker is the optional second runtime: when no daemon can
// start here the test skips with the reason, even in strict mode.
func dockerRuntime(t *testing.T) Runtime {
	t.Helper()
	docker.once.Do(startDocker)
	if docker.reason != "" {
		t.Skip("docker cannot run here: " + docker.reason)
	}
	t.Setenv("DOCKER_HOST", docker.host)
	rt, err := NewRuntime("docker")
	if err != nil {
		t.Fatalf("NewRuntime(docker) with a running dockerd: %v", err)
	}
	return rt
}

func startDocker() {
	for _, bin := range []string{"dockerd", "docker"} {
		if _, err := exec.LookPath(bin); err != nil {
			docker.reason = bin + " is not installed"
			return
		}
	}
	dir, err := os.MkdirTemp("", "agent-images-dockerd-")
	if err != nil {
		docker.reason = err.Error()
		return
	}
	docker.dir = dir
	sock := filepath.Join(dir, "docker.sock")
	docker.host = "unix://" + sock
	var logs bytes.Buffer
	// No iptables and no bridge: the sandboxes this runs in allow neither,
	// and the checks run with --network none anyway.
	cmd := exec.Command("dockerd", "--iptables=false", "--bridge=none", "-H", docker.host,
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"))
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		docker.reason = "starting dockerd: " + err.Error()
		return
	}
	docker.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(60 * time.Second)
	for {
		probe := exec.Command("docker", "version", "--format", "{{.Server.Version}}")
		probe.Env = append(os.Environ(), "DOCKER_HOST="+docker.host)
		if probe.Run() == nil {
			go func() { <-exited }()
			return
		}
		select {
		case err := <-exited:
			docker.cmd = nil
			docker.reason = fmt.Sprintf("dockerd exited (%v): %s", err, lastLines(logs.String(), 5))
			return
		case <-deadline:
			docker.reason = "dockerd did not answer within 60s: " + lastLines(logs.String(), 5)
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func stopDocker() {
	if docker.cmd != nil && docker.cmd.Process != nil {
		// SIGTERM lets dockerd unmount its overlays before the directory goes.
		_ = docker.cmd.Process.Signal(syscall.SIGTERM)
		for i := 0; i < 100; i++ {
			if docker.cmd.Process.Signal(syscall.Signal(0)) != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if docker.dir != "" {
		_ = os.RemoveAll(docker.dir)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// containerCases are the static cases with a container-visible difference,
// plus the passing ones; only, when given, restricts them by name.
func containerCases(only ...string) []int {
	var idx []int
	for i, tc := range staticCases {
		if (len(tc.wantFailed) == 0 || len(tc.wantRun) > 0) && (only == nil || slices.Contains(only, tc.name)) {
			idx = append(idx, i)
		}
	}
	return idx
}

func testContainer(t *testing.T, rt Runtime, cases, emulatedCases []int) {
	for _, arch := range []string{"amd64", "arm64"} {
		todo := cases
		if arch != hostArch {
			todo = emulatedCases
		}
		for _, i := range todo {
			tc := staticCases[i]
			// Not parallel: podman serialises on its storage lock, and
			// parallel runs were twice as slow here.
			t.Run(arch+"/"+tc.name, func(t *testing.T) {
				img, want := caseImage(t, arch, tc.nix, tc.edit)
				rep, err := Test(t.Context(), img, want, WithRuntime(rt), WithLogf(t.Logf))
				if err != nil {
					t.Fatalf("Test() error: %v", err)
				}
				if rep.Mode != ModeContainer {
					t.Fatalf("Test() mode = %s (%s), want container", rep.Mode, rep.Reason)
				}
				wantFailed := sortedCopy(append(slices.Clone(tc.wantFailed), tc.wantRun...))
				if got := checks(rep.Results, Fail); !slices.Equal(got, wantFailed) {
					t.Errorf("Test() failed = %q, want %q\n%s", got, wantFailed, rep)
				}
				var wantSkipped []string
				if tc.nix {
					wantSkipped = []string{"run.nix-install", "run.nix-ld-foreign-elf", "run.nix-path-info", "run.nix-version"}
				}
				if got := checks(rep.Results, Skip); !slices.Equal(got, wantSkipped) {
					t.Errorf("Test() skipped = %q, want %q\n%s", got, wantSkipped, rep)
				}
				for _, r := range rep.Skipped() {
					if r.Detail == "" {
						t.Errorf("Test() skipped %s without a reason", r.Check)
					}
				}
			})
		}
	}
}

// emulatedCases run under qemu as well: every pass case and one failure of
// each kind the architecture could change (identity, ownership, nix.conf,
// the per-arch loader). The rest of the catalogue does not depend on it.
var emulatedCases = []string{
	"default image passes", "user root", "cache dir owned by root", "nix and nix-ld stand-ins pass",
	"nix sandbox on", "no loader symlink",
}

func TestContainerPodman(t *testing.T) {
	testContainer(t, podman(t), containerCases(), containerCases(emulatedCases...))
}

// TestContainerDocker proves the docker runtime on a few cases; the checks
// themselves do not depend on the runtime.
func TestContainerDocker(t *testing.T) {
	some := containerCases("default image passes", "user root", "cache dir owned by root", "nix and nix-ld stand-ins pass")
	testContainer(t, dockerRuntime(t), some, some)
}

// TestForeignELF runs a dynamically linked host program through a loader at
// the conventional path, the check real nix-ld images get. The host's glibc
// loader plays nix-ld, so this runs on x86_64 hosts with glibc only.
func TestForeignELF(t *testing.T) {
	rt := podman(t)
	if hostArch != "amd64" {
		t.Skip("needs an x86_64 glibc host to borrow a loader from")
	}
	hostFile := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Skipf("host has no %s: %v", p, err)
		}
		return b
	}
	const glibc = "/nix/store/0000000000000000000000000glibc-glibc-host"
	tests := []struct {
		name     string
		loader   string // the loader symlink's target
		wantStat Status
		wantText string
	}{
		{name: "real loader runs it", loader: glibc + "/lib/ld-linux-x86-64.so.2", wantStat: Pass, wantText: "exit 0"},
		{name: "loader that is no loader", loader: storeNixLd + "/lib/ld.so", wantStat: Fail},
		{name: "stand-in nix-ld", loader: storeNixLd + "/bin/nix-ld", wantStat: Skip, wantText: "stand-in"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, cf := agentTree(t, "amd64"), agentConfig("amd64")
			withNix(tr, &cf, "amd64")
			tr.dir(glibc+"/lib", 0, 0, 0o555)
			tr[glibc+"/lib/ld-linux-x86-64.so.2"] = entry{typ: '0', mode: 0o555, data: hostFile("/lib64/ld-linux-x86-64.so.2")}
			tr.dir("/lib/x86_64-linux-gnu", 0, 0, 0o755)
			tr[glibc+"/lib/libc.so.6"] = entry{typ: '0', mode: 0o555, data: hostFile("/lib/x86_64-linux-gnu/libc.so.6")}
			tr.symlink("/lib/x86_64-linux-gnu/libc.so.6", glibc+"/lib/libc.so.6")
			tr[storeTools+"/bin/true"] = entry{typ: '0', mode: 0o555, data: hostFile("/bin/true")}
			tr.symlink("/bin/true", storeTools+"/bin/true")
			tr.symlink("/lib64/ld-linux-x86-64.so.2", tc.loader)
			want := nixExpect()
			rep, err := Test(t.Context(), image(t, tr, cf), want, WithRuntime(rt))
			if err != nil {
				t.Fatalf("Test() error: %v", err)
			}
			for _, r := range rep.Results {
				if r.Check == "run.nix-ld-foreign-elf" {
					if r.Status != tc.wantStat || !strings.Contains(r.Detail, tc.wantText) {
						t.Errorf("run.nix-ld-foreign-elf = %s %q, want %s containing %q", r.Status, r.Detail, tc.wantStat, tc.wantText)
					}
					return
				}
			}
			t.Errorf("no run.nix-ld-foreign-elf result:\n%s", rep)
		})
	}
}

// TestStaticOnlyPlatform: a platform the host cannot run gets the static
// checks alone, with the reason.
func TestStaticOnlyPlatform(t *testing.T) {
	rt := podman(t)
	dir := t.TempDir()
	oldDir := binfmtDir
	binfmtDir = filepath.Join(dir, "absent")
	t.Cleanup(func() { binfmtDir = oldDir })
	other := "arm64"
	if hostArch == "arm64" {
		other = "amd64"
	}
	img, want := caseImage(t, other, false, func(_ tree, cf *v1.ConfigFile) { cf.Config.User = "root" })
	rep, err := Test(t.Context(), img, want, WithRuntime(rt))
	if err != nil {
		t.Fatalf("Test() error: %v", err)
	}
	if rep.Mode != ModeStatic || !strings.Contains(rep.Reason, "binfmt_misc is not mounted") {
		t.Errorf("Test() mode %s reason %q, want static because binfmt_misc is not mounted", rep.Mode, rep.Reason)
	}
	if got := checks(rep.Results, Fail); !slices.Equal(got, []string{"config.nonroot", "config.user"}) {
		t.Errorf("Test() failed = %q, want the static root checks", got)
	}
}

// TestNoShell: an image without sh cannot run the check script; every
// container check that needed it fails with the reason, and the entrypoint
// check, which needs no shell, still passes.
func TestNoShell(t *testing.T) {
	rt := podman(t)
	img, want := caseImage(t, "amd64", false, func(tr tree, cf *v1.ConfigFile) {
		delete(tr, "/bin/sh")
		// The agent is a script; give it an interpreter that is not on PATH.
		tr.symlink("/libexec/sh", storeBusybox+"/bin/busybox")
		tr.file(storeAgent+"/bin/fake-agent", 0o555, "#!/libexec/sh\necho fake-agent 1.2.3\n")
		// No home shim either: a shim run by busybox would find its sh applet.
		cf.Config.Entrypoint = []string{"fake-agent"}
	})
	want.Entrypoint = []string{"fake-agent"}
	rep, err := Test(t.Context(), img, want, WithRuntime(rt))
	if err != nil {
		t.Fatalf("Test() error: %v", err)
	}
	for _, r := range rep.Results {
		switch {
		case r.Static:
		case r.Check == "run.version":
			if r.Status != Pass {
				t.Errorf("%s = %s %q, want pass", r.Check, r.Status, r.Detail)
			}
		case r.Status != Fail || !strings.Contains(r.Detail, "did not finish"):
			t.Errorf("%s = %s %q, want a failure saying the script did not finish", r.Check, r.Status, r.Detail)
		}
	}
}

// TestAnyUserChecks runs AnyUser, as uid 1001 with a project mounted at
// /workspace, against images whose home shim does less or more of its job:
// each check must fail exactly when its part is missing.
func TestAnyUserChecks(t *testing.T) {
	rt := podman(t)
	ws := t.TempDir()
	if err := os.Chown(ws, 1001, 1001); err != nil {
		t.Fatal(err)
	}
	const makeHome = `h=/tmp/h-$(id -u); mkdir -p $h/.config $h/.cache $h/.local/share $h/.local/state
export HOME=$h XDG_CONFIG_HOME=$h/.config XDG_CACHE_HOME=$h/.cache XDG_DATA_HOME=$h/.local/share XDG_STATE_HOME=$h/.local/state
`
	const linkMount = "ln -s /home/agent/.config/agent-images-smoke $h/.config/\n"
	// What the real shim does for a uid the image does not name: append its
	// entries to the image's /etc files, which the image makes writable.
	const addEntry = `echo "$(id -u):x:$(id -u):$(id -g):container user:$HOME:/bin/sh" >> /etc/passwd
echo "$(id -g):x:$(id -g):" >> /etc/group
`
	// What it did before: entries in private copies of the files, through a
	// preloaded nss_wrapper (a stand-in library here; static busybox would
	// ignore a real one, as statically linked agents do).
	const nssLib = "/nix/store/00000000000000000000000000nss-nss_wrapper-1.1.16/lib/libnss_wrapper.so"
	const nssEntry = `n=/tmp/nss-$(id -u); mkdir -p $n
{ cat /etc/passwd; echo "$(id -u):x:$(id -u):$(id -g):container user:$HOME:/bin/sh"; } > $n/passwd
{ cat /etc/group; echo "$(id -g):x:$(id -g):"; } > $n/group
export NSS_WRAPPER_PASSWD=$n/passwd NSS_WRAPPER_GROUP=$n/group LD_PRELOAD=` + nssLib + "\n"
	// Podman adds a passwd entry for a --user uid the image lacks unless
	// --passwd=false, which leaves the uid unnamed, as Docker does.
	unnamed := []string{"--passwd=false"}
	tests := []struct {
		name        string
		shim        string
		flags       []string
		wantFailed  []string
		wantSkipped []string
	}{
		{name: "shim that gives a home", shim: makeHome + linkMount},
		{
			name: "shim that does nothing",
			wantFailed: []string{"run.writable $HOME", "run.writable $XDG_CACHE_HOME", "run.writable $XDG_CONFIG_HOME",
				"run.writable $XDG_DATA_HOME", "run.writable $XDG_STATE_HOME"},
		},
		{name: "shim that loses what is mounted in the old home", shim: makeHome, wantFailed: []string{"run.home-mount"}},
		{name: "unnamed uid, shim that adds its entry", shim: makeHome + linkMount + addEntry, flags: unnamed},
		{name: "unnamed uid, shim that gives it no entry", shim: makeHome + linkMount, flags: unnamed, wantFailed: []string{"run.user-entry", "run.user-name"}},
		{name: "unnamed uid, shim that gives it an entry through nss_wrapper", shim: makeHome + linkMount + nssEntry, flags: unnamed, wantFailed: []string{"run.user-entry", "run.user-name"}},
		{name: "named uid, shim that preloads nss_wrapper anyway", shim: makeHome + linkMount + nssEntry, wantFailed: []string{"run.user-entry"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img, _ := caseImage(t, hostArch, false, func(tr tree, _ *v1.ConfigFile) {
				tr.file(storeShim+"/bin/"+HomeShim, 0o555, "#!/bin/sh\n"+tc.shim+"exec \"$@\"\n")
				tr.dir(path.Dir(nssLib), 0, 0, 0o555)
				tr.file(nssLib, 0o444, "agent-images stand-in for nss_wrapper: not a real library\n")
				// Writable by every uid, as mkAgentImage makes them.
				tr.file("/etc/passwd", 0o666, "root:x:0:0:root:/root:/bin/sh\nagent:x:1000:1000::/home/agent:/bin/sh\n")
				tr.file("/etc/group", 0o666, "root:x:0:\nagent:x:1000:\n")
			})
			want := AnyUser("/workspace")
			want.Touch = []string{"/workspace/owner"}
			flags := append([]string{"--user", "1001:1001", "-v", ws + ":/workspace"}, tc.flags...)
			rep, err := Test(t.Context(), img, want, WithRuntime(rt), WithRunFlags(flags...))
			if err != nil {
				t.Fatalf("Test() error: %v", err)
			}
			if got := checks(rep.Results, Fail); !slices.Equal(got, tc.wantFailed) {
				t.Errorf("Test() failed = %q, want %q\n%s", got, tc.wantFailed, rep)
			}
			if got := checks(rep.Results, Skip); !slices.Equal(got, tc.wantSkipped) {
				t.Errorf("Test() skipped = %q, want %q\n%s", got, tc.wantSkipped, rep)
			}
			if st, err := os.Stat(filepath.Join(ws, "owner")); err != nil {
				t.Errorf("run.touch left no file on the host: %v", err)
			} else if uid := st.Sys().(*syscall.Stat_t).Uid; uid != 1001 {
				t.Errorf("the file the check created belongs to uid %d, want 1001", uid)
			}
		})
	}
}
