package smoke

import (
	"context"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

const storeNixLd = "/nix/store/0000000000000000000000000nixld-nix-ld-standin"

// withNix adds single-user Nix and nix-ld as stand-ins, the way
// mkAgentImage's withNix and withNixLd lay them out.
func withNix(tr tree, cf *v1.ConfigFile, arch string) {
	tr.dir("/nix/store", 1000, 1000, 0o755)
	tr.dir("/etc/nix", 0, 0, 0o755)
	tr.file("/etc/nix/nix.conf", 0o644, "sandbox = false\nexperimental-features = nix-command flakes\n")
	tr.file(storeTools+"/bin/nix", 0o555, "#!/bin/sh\necho 'nix: agent-images stand-in, not real Nix' >&2\nexit 1\n")
	tr.symlink("/bin/nix", storeTools+"/bin/nix")
	tr.dir(storeNixLd+"/bin", 0, 0, 0o555)
	tr.file(storeNixLd+"/bin/nix-ld", 0o555, "#!/bin/sh\necho 'nix-ld: agent-images stand-in' >&2\nexit 127\n")
	tr.dir(storeNixLd+"/lib", 0, 0, 0o555)
	tr.file(storeNixLd+"/lib/ld.so", 0o555, "stand-in loader\n")
	loader := LoaderPath(arch)
	tr.dir(pathDir(loader), 0, 0, 0o755)
	tr.symlink(loader, storeNixLd+"/bin/nix-ld")
	cf.Config.Env = append(cf.Config.Env,
		"NIX_CONF_DIR=/etc/nix",
		"NIX_PATH=nixpkgs=flake:nixpkgs",
		"NIX_LD="+storeNixLd+"/lib/ld.so",
		"NIX_LD_LIBRARY_PATH="+storeNixLd+"/lib",
	)
}

func pathDir(p string) string { return p[:strings.LastIndex(p, "/")] }

func nixExpect() Expect {
	want := AgentDefaults("fake-agent")
	want.Absent = nil
	want.Commands = append(want.Commands, "nix")
	want.Nix = &NixExpect{Features: []string{"nix-command", "flakes"}, ConfDir: "/etc/nix"}
	want.NixLd = &NixLdExpect{}
	return want
}

// staticCases are images that differ from a good one in one way, with the
// checks that must fail because of it, static and in a container.
var staticCases = []struct {
	name       string
	nix        bool
	edit       func(tr tree, cf *v1.ConfigFile)
	wantFailed []string // static checks
	wantRun    []string // container checks
}{
	{name: "default image passes", edit: func(tree, *v1.ConfigFile) {}},
	{name: "numeric user passes", edit: func(_ tree, cf *v1.ConfigFile) { cf.Config.User = "1000:1000" }},
	{
		name:       "no user runs as root",
		edit:       func(_ tree, cf *v1.ConfigFile) { cf.Config.User = "" },
		wantFailed: []string{"config.nonroot", "config.user"},
		wantRun:    []string{"run.id", "run.nonroot", "run.whoami"},
	},
	{
		name:       "user root",
		edit:       func(_ tree, cf *v1.ConfigFile) { cf.Config.User = "root" },
		wantFailed: []string{"config.nonroot", "config.user"},
		wantRun:    []string{"run.id", "run.nonroot", "run.whoami"},
	},
	{
		name:       "cache dir owned by root",
		edit:       treeEdit(func(tr tree) { tr.dir("/home/agent/.cache", 0, 0, 0o755) }).apply,
		wantFailed: []string{"fs.dir /home/agent/.cache"},
		wantRun:    []string{"run.dir /home/agent/.cache"},
	},
	{
		name:       "state dir missing",
		edit:       treeEdit(func(tr tree) { delete(tr, "/home/agent/.local/state") }).apply,
		wantFailed: []string{"fs.dir /home/agent/.local/state"},
		wantRun:    []string{"run.dir /home/agent/.local/state"},
	},
	{
		name: "XDG_CONFIG_HOME twice",
		edit: func(_ tree, cf *v1.ConfigFile) {
			cf.Config.Env = append(cf.Config.Env, "XDG_CONFIG_HOME=/home/agent/.config")
		},
		wantFailed: []string{"config.env-once XDG_CONFIG_HOME"},
	},
	{
		name: "XDG_CACHE_HOME wrong",
		edit: func(_ tree, cf *v1.ConfigFile) {
			cf.Config.Env = slices.DeleteFunc(cf.Config.Env, func(s string) bool { return strings.HasPrefix(s, "XDG_CACHE_HOME=") })
			cf.Config.Env = append(cf.Config.Env, "XDG_CACHE_HOME=/tmp/cache")
		},
		wantFailed: []string{"config.env XDG_CACHE_HOME"},
		wantRun:    []string{"run.env XDG_CACHE_HOME"},
	},
	{
		name:       "tmp not sticky",
		edit:       treeEdit(func(tr tree) { tr.dir("/tmp", 0, 0, 0o777) }).apply,
		wantFailed: []string{"fs.tmp"},
		wantRun:    []string{"run.tmp"},
	},
	{
		name:       "git missing",
		edit:       treeEdit(func(tr tree) { delete(tr, "/bin/git") }).apply,
		wantFailed: []string{"fs.command git"},
		wantRun:    []string{"run.command git"},
	},
	{
		name: "nix present",
		edit: treeEdit(func(tr tree) {
			tr.file(storeTools+"/bin/nix", 0o555, "#!/bin/sh\nexit 1\n")
			tr.symlink("/bin/nix", storeTools+"/bin/nix")
		}).apply,
		wantFailed: []string{"fs.absent nix"},
		wantRun:    []string{"run.absent nix"},
	},
	{
		name:       "entrypoint dangling",
		edit:       treeEdit(func(tr tree) { delete(tr, storeAgent+"/bin/fake-agent") }).apply,
		wantFailed: []string{"fs.entrypoint"},
		wantRun:    []string{"run.version"},
	},
	{
		name:       "entrypoint not what was asked",
		edit:       func(_ tree, cf *v1.ConfigFile) { cf.Config.Entrypoint = []string{"git"} },
		wantFailed: []string{"config.entrypoint"},
	},
	{
		name:       "label missing",
		edit:       func(_ tree, cf *v1.ConfigFile) { delete(cf.Config.Labels, "org.opencontainers.image.licenses") },
		wantFailed: []string{"config.label org.opencontainers.image.licenses"},
	},
	{
		name:       "passwd home wrong",
		edit:       treeEdit(func(tr tree) { tr.file("/etc/passwd", 0o644, "agent:x:1000:1000::/home/other:/bin/sh\n") }).apply,
		wantFailed: []string{"fs.passwd"},
	},
	{
		name:       "no CA bundle",
		edit:       treeEdit(func(tr tree) { delete(tr, "/etc/ssl/certs/ca-bundle.crt") }).apply,
		wantFailed: []string{"fs.file-env SSL_CERT_FILE"},
		wantRun:    []string{"run.file-env SSL_CERT_FILE"},
	},
	{name: "nix and nix-ld stand-ins pass", nix: true, edit: func(tree, *v1.ConfigFile) {}},
	{
		name: "nix sandbox on",
		nix:  true,
		edit: treeEdit(func(tr tree) {
			tr.file("/etc/nix/nix.conf", 0o644, "sandbox = true\nexperimental-features = nix-command flakes\n")
		}).apply,
		wantFailed: []string{"fs.nix-conf"},
		wantRun:    []string{"run.nix-conf"},
	},
	{
		name: "nix features missing flakes",
		nix:  true,
		edit: treeEdit(func(tr tree) {
			tr.file("/etc/nix/nix.conf", 0o644, "sandbox = false\nexperimental-features = nix-command\n")
		}).apply,
		wantFailed: []string{"fs.nix-conf"},
		wantRun:    []string{"run.nix-conf"},
	},
	{
		name:       "nix store root-owned",
		nix:        true,
		edit:       treeEdit(func(tr tree) { tr.dir("/nix/store", 0, 0, 0o755) }).apply,
		wantFailed: []string{"fs.nix-store"},
		wantRun:    []string{"run.nix-store"},
	},
	{
		name: "no loader symlink",
		nix:  true,
		edit: treeEdit(func(tr tree) {
			delete(tr, "/lib64/ld-linux-x86-64.so.2")
			delete(tr, "/lib/ld-linux-aarch64.so.1")
		}).apply,
		wantFailed: []string{"fs.nix-ld-loader"},
		wantRun:    []string{"run.nix-ld-loader"},
	},
	{
		name: "NIX_LD_LIBRARY_PATH unset",
		nix:  true,
		edit: func(_ tree, cf *v1.ConfigFile) {
			cf.Config.Env = slices.DeleteFunc(cf.Config.Env, func(s string) bool { return strings.HasPrefix(s, "NIX_LD_LIBRARY_PATH=") })
		},
		wantFailed: []string{"config.env NIX_LD_LIBRARY_PATH"},
		wantRun:    []string{"run.nix-ld-env"},
	},
}

// treeEdit lets a case that only touches files be written as func(tree).
type treeEdit func(tr tree)

func (e treeEdit) apply(tr tree, _ *v1.ConfigFile) { e(tr) }

func caseImage(t testing.TB, arch string, nix bool, edit func(tree, *v1.ConfigFile)) (v1.Image, Expect) {
	tr, cf := agentTree(t, arch), agentConfig(arch)
	want := AgentDefaults("fake-agent")
	if nix {
		withNix(tr, &cf, arch)
		want = nixExpect()
	}
	edit(tr, &cf)
	return image(t, tr, cf), want
}

func TestStatic(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		for _, tc := range staticCases {
			t.Run(arch+"/"+tc.name, func(t *testing.T) {
				img, want := caseImage(t, arch, tc.nix, tc.edit)
				rep, err := Test(context.Background(), img, want)
				if err != nil {
					t.Fatalf("Test() error: %v", err)
				}
				if rep.Mode != ModeStatic || rep.Reason == "" {
					t.Errorf("Test() mode %s reason %q, want static with a reason", rep.Mode, rep.Reason)
				}
				if got := (v1.Platform{OS: "linux", Architecture: arch}); rep.Platform.Architecture != got.Architecture {
					t.Errorf("Test() platform = %v, want %v", rep.Platform, got)
				}
				for _, r := range rep.Results {
					if !r.Static {
						t.Errorf("Test() without runtime ran %s", r.Check)
					}
				}
				if got := checks(rep.Results, Fail); !slices.Equal(got, sortedCopy(tc.wantFailed)) {
					t.Errorf("Test() failed = %q, want %q\n%s", got, sortedCopy(tc.wantFailed), rep)
				}
			})
		}
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func TestCheckLibraries(t *testing.T) {
	const (
		zlib    = "/nix/store/504d5ssl4x0vn2ybfrfmgw8l2dnlwrhf-zlib-1.3.1/lib"
		openssl = "/nix/store/n7s2ldl607iyp0c5nzrmyf6hldzrwnzq-openssl-3.5.2/lib"
		utilLx  = "/nix/store/91f82292w11ialgi6xwy56ib7bkrnrpy-util-linux-2.41.1/lib"
	)
	tests := []struct {
		name string
		lp   string
		libs []string
		only bool
		want bool
	}{
		{name: "all present", lp: zlib + ":" + openssl, libs: []string{"zlib", "openssl"}, want: true},
		{name: "subset of more", lp: zlib + ":" + openssl + ":" + utilLx, libs: []string{"zlib"}, want: true},
		{name: "missing", lp: zlib, libs: []string{"zlib", "openssl"}},
		{name: "only, with extra", lp: zlib + ":" + openssl + ":" + utilLx, libs: []string{"zlib", "openssl"}, only: true},
		{name: "only, exact", lp: openssl + ":" + zlib, libs: []string{"zlib", "openssl"}, only: true, want: true},
		{name: "prefix is not a package", lp: utilLx, libs: []string{"util"}},
		{name: "empty", lp: "", libs: []string{"zlib"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, detail := checkLibraries(tc.lp, tc.libs, tc.only)
			if got != tc.want {
				t.Errorf("checkLibraries(%q, %q, %v) = %v (%s), want %v", tc.lp, tc.libs, tc.only, got, detail, tc.want)
			}
		})
	}
}
