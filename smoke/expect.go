package smoke

import (
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"
)

// Expect is what an image must look like. Zero fields are not checked, so a
// caller states only what it knows; UserDefaults states everything a
// default release image promises.
type Expect struct {
	User       string // user name the image runs as (config User may name it or its UID)
	UID, GID   int    // numeric identity of User; checked when User is set
	Home       string // $HOME, from passwd and the environment
	WorkingDir string // config WorkingDir and `pwd` in the container

	// Entrypoint is the config entrypoint; its program must resolve on the
	// image PATH, and running the image with --version must exit 0.
	Entrypoint []string

	Commands []string // must resolve on PATH (command -v)
	Absent   []string // must not resolve on PATH

	Env       map[string]string // exact values, in the config and in the container
	UniqueEnv []string          // keys that must appear exactly once in the config Env
	FileEnv   []string          // keys whose value must name a file in the image (SSL_CERT_FILE)

	Dirs      []string // must exist, be owned by UID:GID and be writable by the user
	RootOwned []string // must exist and stay owned by root (parents of extraDirectories)

	Tmp              bool // /tmp is a directory with mode 1777, writable by the user
	TmpfsUnderConfig bool // with a tmpfs mounted at $HOME/.config/sub, $HOME/.config stays the user's and writable

	// Writable are directories the process must be able to write and must
	// own, whatever uid it runs as: a path, or $VAR for the directory a
	// variable names in the container (a private HOME the entrypoint made is
	// only known there).
	Writable []string
	// Touch are files the process must be able to create; they are left in
	// place, so a caller that mounted their directory can see on the host
	// who owns them.
	Touch []string
	// UserEntry: whatever uid and gid the process runs as, they have a
	// passwd and group entry (whoami, id -un, id -gn answer). Where the
	// image's /etc/passwd or /etc/group lacks one, the entrypoint must have
	// added it to those files; nothing may be preloaded for it.
	UserEntry bool
	// HomeMount is a directory below the image's HOME (its config Env), e.g.
	// ".config/app", at which a tmpfs is mounted; it must stay writable at the
	// same place below $HOME, whatever HOME the entrypoint gave the process.
	HomeMount string

	// Labels must be present in the config; a non-empty value must match exactly.
	Labels map[string]string

	Nix   *NixExpect   // nil: not checked (use Absent: "nix" to require no Nix)
	NixLd *NixLdExpect // nil: not checked

	NonRoot bool // the image must not run as root (uid 0); always on for release images
}

// NixExpect is single-user Nix inside the image.
type NixExpect struct {
	// Features is the exact set of experimental-features nix.conf enables.
	Features []string
	// ConfDir is the expected NIX_CONF_DIR; empty accepts any non-empty value.
	ConfDir string
	// BundledNixpkgs: NIX_PATH's nixpkgs and the flake registry's (in
	// $NIX_CONF_DIR/registry.json) are one nixpkgs source in the image's
	// store, so <nixpkgs> and nixpkgs#... work offline and from the nixpkgs
	// the image was built with. false leaves NIX_PATH unchecked.
	BundledNixpkgs bool
}

// NixLdExpect is nix-ld inside the image.
type NixLdExpect struct {
	// Loader is the conventional dynamic loader path that must be a symlink
	// to nix-ld; empty picks it from the platform (see LoaderPath).
	Loader string
	// Libraries must each have a lib directory in NIX_LD_LIBRARY_PATH,
	// matched by store path name (/nix/store/<hash>-<name>-<version>/lib).
	Libraries []string
	// OnlyLibraries: NIX_LD_LIBRARY_PATH holds nothing but Libraries, as
	// with a custom nixLdLibraries set.
	OnlyLibraries bool
}

// HomeShim is the program mkAgentImage puts at the head of every
// entrypoint: for a uid other than the image's it makes a private HOME (and
// XDG directories) under $TMPDIR, then runs the rest of the entrypoint. The
// container checks run through it, so they see what the agent sees.
const HomeShim = "agent-images-entrypoint"

// DefaultNixFeatures are the experimental features mkAgentImage enables by default.
var DefaultNixFeatures = []string{"nix-command", "flakes"}

// XDGVars are the XDG base directory variables an image sets, with their
// directory relative to $HOME. XDG_RUNTIME_DIR is deliberately not one of them.
var XDGVars = []struct{ Key, Rel string }{
	{"XDG_CONFIG_HOME", ".config"},
	{"XDG_CACHE_HOME", ".cache"},
	{"XDG_DATA_HOME", ".local/share"},
	{"XDG_STATE_HOME", ".local/state"},
}

// UserDefaults is what every default release image must satisfy, for its
// user, uid, gid, home and working directory: it runs mainProgram as that
// user, has the base commands and no nix, sets HOME, USER and the XDG
// defaults (which follow home) exactly once and owns their directories, has
// a CA bundle, a sticky world-writable /tmp and the release labels.
func UserDefaults(mainProgram, user string, uid, gid int, home, workingDir string) Expect {
	e := Expect{
		User:       user,
		UID:        uid,
		GID:        gid,
		Home:       home,
		WorkingDir: workingDir,
		Entrypoint: []string{HomeShim, mainProgram},
		// What the default basePackages put on PATH (git, coreutils, bash,
		// ripgrep, findutils, grep, sed, gawk, diff, jq, tar, gzip, less,
		// curl, which); their CA bundle is checked through SSL_CERT_FILE.
		Commands: []string{"git", "ls", "bash", "rg", "find", "grep", "sed", "awk", "diff", "jq", "tar", "gzip", "less", "curl", "which"},
		Absent:   []string{"nix"},
		Env: map[string]string{
			"HOME": home,
			"USER": user,
		},
		UniqueEnv:        []string{"HOME", "USER", "PATH", "SSL_CERT_FILE"},
		FileEnv:          []string{"SSL_CERT_FILE"},
		Dirs:             []string{home, workingDir},
		Tmp:              true,
		TmpfsUnderConfig: true,
		UserEntry:        true,
		// Every release image says what is inside for registries and
		// `podman inspect`. There is no source among them: the image cannot
		// know which repository releases it, so the index says that.
		Labels: map[string]string{
			"org.opencontainers.image.title":    "",
			labelVersion:                        "",
			"org.opencontainers.image.licenses": "",
		},
		NonRoot: true,
	}
	for _, x := range XDGVars {
		dir := path.Join(home, x.Rel)
		e.Env[x.Key] = dir
		e.UniqueEnv = append(e.UniqueEnv, x.Key)
		e.Dirs = append(e.Dirs, dir)
	}
	return e
}

// LoaderPath is the conventional dynamic loader path foreign binaries expect
// on an architecture (GOARCH naming, as in v1.Platform), where nix-ld must
// sit; "" for architectures it does not know.
func LoaderPath(arch string) string {
	return map[string]string{"amd64": "/lib64/ld-linux-x86-64.so.2", "arm64": "/lib/ld-linux-aarch64.so.1"}[arch]
}

var (
	envKey      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	commandName = regexp.MustCompile(`^[A-Za-z0-9_.+-]+$`)
)

// validate rejects expectations the checks cannot express, so a typo in a
// caller's Expect is an error rather than a check that silently passes.
func (e Expect) validate() error {
	var loader, confDir string
	if e.NixLd != nil {
		loader = e.NixLd.Loader
	}
	if e.Nix != nil {
		confDir = e.Nix.ConfDir
	}
	var writable []string // the paths; $VAR entries are checked below
	for _, w := range e.Writable {
		if k, ok := strings.CutPrefix(w, "$"); !ok {
			writable = append(writable, w)
		} else if !envKey.MatchString(k) {
			return fmt.Errorf("expect: writable %q names no shell variable", w)
		}
	}
	for _, c := range []struct {
		what string
		ps   []string
	}{
		{"home", []string{e.Home}},
		{"working directory", []string{e.WorkingDir}},
		{"directory", e.Dirs},
		{"root-owned path", e.RootOwned},
		{"file", e.Touch},
		{"writable directory", writable},
		{"loader", []string{loader}},
		{"NIX_CONF_DIR", []string{confDir}},
	} {
		for _, p := range c.ps {
			if p != "" && (!path.IsAbs(p) || path.Clean(p) != p) {
				return fmt.Errorf("expect: %s %q must be a clean absolute path", c.what, p)
			}
		}
	}
	if e.HomeMount != "" && (path.IsAbs(e.HomeMount) || path.Clean(e.HomeMount) != e.HomeMount || strings.HasPrefix(e.HomeMount, "..")) {
		return fmt.Errorf("expect: home mount %q must be a clean path relative to HOME", e.HomeMount)
	}
	if e.TmpfsUnderConfig && e.Home == "" {
		return fmt.Errorf("expect: TmpfsUnderConfig needs Home")
	}
	if len(e.Dirs) > 0 && e.User == "" {
		return fmt.Errorf("expect: Dirs need User, UID and GID for their owner")
	}
	for _, k := range slices.Concat(slices.Collect(maps.Keys(e.Env)), e.UniqueEnv, e.FileEnv) {
		if !envKey.MatchString(k) {
			return fmt.Errorf("expect: environment key %q is not a shell variable name", k)
		}
	}
	for _, c := range slices.Concat(e.Commands, e.Absent) {
		if !commandName.MatchString(c) {
			return fmt.Errorf("expect: command %q is not a plain command name", c)
		}
	}
	return nil
}
