package smoke

import (
	"archive/tar"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// standinMarker is what the offline stand-ins for nix and nix-ld print or
// contain, so checks that need the real programs can say why they skip.
const standinMarker = "agent-images stand-in"

// staticRun holds what the static checks learned, which the container checks
// reuse (the entrypoint's store path, the loader, a patched foreign ELF).
type staticRun struct {
	cfg  v1.Config
	fs   *imageFS
	want Expect
	plat v1.Platform

	env        map[string]string // last value of each key, as a runtime applies it
	envCount   map[string]int
	results    []Result
	entryStore string      // /nix/store/<hash>-<name> holding the entrypoint program
	loader     string      // nix-ld loader path for this platform
	foreign    *foreignELF // program patched to run through the loader
	noForeign  string      // why foreign is nil: no loader, stand-in nix-ld, no program
}

func (s *staticRun) check(check string, good bool, format string, args ...any) {
	st, detail := ok(good, format, args...)
	s.results = append(s.results, Result{Check: check, Static: true, Status: st, Detail: detail})
}

func (s *staticRun) run() []Result {
	s.env, s.envCount = map[string]string{}, map[string]int{}
	for _, kv := range s.cfg.Env {
		k, v, _ := strings.Cut(kv, "=")
		s.env[k] = v
		s.envCount[k]++
	}
	s.loader = LoaderPath(s.plat.Architecture)
	if s.want.NixLd != nil && s.want.NixLd.Loader != "" {
		s.loader = s.want.NixLd.Loader
	}
	s.identity()
	if s.want.WorkingDir != "" {
		s.check("config.workdir", s.cfg.WorkingDir == s.want.WorkingDir, "WorkingDir = %q, want %q", s.cfg.WorkingDir, s.want.WorkingDir)
	}
	s.entrypoint()
	s.environment()
	s.labels()
	s.commands()
	s.dirs()
	s.nix()
	s.nixLd()
	return s.results
}

type passwdEntry struct {
	name     string
	uid, gid int
	home     string
}

func parsePasswd(b []byte) (out []passwdEntry) {
	for l := range strings.SplitSeq(string(b), "\n") {
		f := strings.Split(l, ":")
		if len(f) < 6 {
			continue
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 == nil && err2 == nil {
			out = append(out, passwdEntry{name: f[0], uid: uid, gid: gid, home: f[5]})
		}
	}
	return out
}

// parseGroup maps group names to gids from /etc/group.
func parseGroup(b []byte) map[string]int {
	out := map[string]int{}
	for l := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Split(l, ":"); len(f) >= 3 {
			if gid, err := strconv.Atoi(f[2]); err == nil {
				out[f[0]] = gid
			}
		}
	}
	return out
}

// identity checks config User against passwd and group, and that the image
// does not run as root.
func (s *staticRun) identity() {
	w := s.want
	passwdFile, _ := s.fs.readFile("/etc/passwd")
	groupFile, _ := s.fs.readFile("/etc/group")
	passwd, groups := parsePasswd(passwdFile), parseGroup(groupFile)
	userPart, groupPart, hasGroup := strings.Cut(s.cfg.User, ":")

	// Resolve the config user to a uid, as the runtime will.
	uid, gid := -1, -1
	if n, err := strconv.Atoi(userPart); err == nil {
		uid = n
	}
	for _, e := range passwd {
		if e.name == userPart || (uid >= 0 && e.uid == uid) {
			uid, gid = e.uid, e.gid
			break
		}
	}
	if userPart == "" {
		uid, gid = 0, 0
	}
	if hasGroup {
		if n, err := strconv.Atoi(groupPart); err == nil {
			gid = n
		} else if g, ok := groups[groupPart]; ok {
			gid = g
		} else {
			gid = -1
		}
	}

	if w.NonRoot {
		switch {
		case userPart == "":
			s.check("config.nonroot", false, "config User is empty, so the image runs as root")
		case uid == 0 || userPart == "root":
			s.check("config.nonroot", false, "config User %q is root", s.cfg.User)
		case uid < 0:
			s.check("config.nonroot", false, "config User %q is not in /etc/passwd and not numeric", s.cfg.User)
		default:
			s.check("config.nonroot", true, "config User %q is uid %d", s.cfg.User, uid)
		}
	}
	if w.User == "" {
		return
	}
	okName := userPart == w.User || userPart == strconv.Itoa(w.UID)
	s.check("config.user", okName && uid == w.UID && (gid == w.GID || gid < 0 && !hasGroup),
		"config User %q resolves to %d:%d, want %s (%d:%d)", s.cfg.User, uid, gid, w.User, w.UID, w.GID)

	var entry *passwdEntry
	if i := slices.IndexFunc(passwd, func(e passwdEntry) bool { return e.name == w.User }); i >= 0 {
		entry = &passwd[i]
	}
	switch {
	case entry == nil:
		s.check("fs.passwd", false, "/etc/passwd has no user %s", w.User)
	case entry.uid != w.UID || entry.gid != w.GID || (w.Home != "" && entry.home != w.Home):
		s.check("fs.passwd", false, "/etc/passwd has %s as %d:%d home %s, want %d:%d home %s",
			w.User, entry.uid, entry.gid, entry.home, w.UID, w.GID, w.Home)
	default:
		s.check("fs.passwd", true, "%s is %d:%d home %s", w.User, entry.uid, entry.gid, entry.home)
	}
	var gname string
	for n, g := range groups {
		if g == w.GID && (gname == "" || n < gname) {
			gname = n
		}
	}
	s.check("fs.group", gname != "", "/etc/group entry for gid %d: %q", w.GID, gname)
}

func (s *staticRun) entrypoint() {
	w := s.want
	if len(w.Entrypoint) > 0 {
		s.check("config.entrypoint", slices.Equal(s.cfg.Entrypoint, w.Entrypoint),
			"Entrypoint = %q, want %q", s.cfg.Entrypoint, w.Entrypoint)
	}
	if len(s.cfg.Entrypoint) == 0 {
		if len(w.Entrypoint) > 0 {
			s.check("fs.entrypoint", false, "the image has no entrypoint")
		}
		return
	}
	// Behind the home shim, the program it runs must resolve too, and it is
	// the program whose store path the Nix checks query.
	progs := s.cfg.Entrypoint[:1]
	if path.Base(progs[0]) == HomeShim {
		if len(s.cfg.Entrypoint) < 2 {
			s.check("fs.entrypoint", false, "Entrypoint %q has %s but no program for it to run", s.cfg.Entrypoint, HomeShim)
			return
		}
		progs = s.cfg.Entrypoint[:2]
	}
	var resolved []string
	for _, prog := range progs {
		found, info, ok := s.fs.lookPath(prog, s.env["PATH"])
		if !ok {
			s.check("fs.entrypoint", false, "%s is not an executable on PATH %q", prog, s.env["PATH"])
			return
		}
		s.entryStore = ""
		if strings.HasPrefix(info.Path, "/nix/store/") {
			parts := strings.SplitN(info.Path, "/", 5)
			s.entryStore = "/" + path.Join(parts[1], parts[2], parts[3])
		}
		resolved = append(resolved, found+" -> "+info.Path)
	}
	s.check("fs.entrypoint", true, "%s", strings.Join(resolved, ", "))
}

// viaShim reports whether the image's entrypoint starts with the home shim,
// which the container checks then run through.
func (s *staticRun) viaShim() bool {
	return len(s.cfg.Entrypoint) > 1 && path.Base(s.cfg.Entrypoint[0]) == HomeShim
}

func (s *staticRun) environment() {
	w := s.want
	for _, k := range slices.Sorted(maps.Keys(w.Env)) {
		v, ok := s.env[k]
		s.check("config.env "+k, ok && v == w.Env[k], "%s = %s, want %q", k, quoteOrUnset(v, ok), w.Env[k])
	}
	for _, k := range w.UniqueEnv {
		s.check("config.env-once "+k, s.envCount[k] == 1, "%s appears %d times in the config Env, want once", k, s.envCount[k])
	}
	for _, k := range w.FileEnv {
		v, ok := s.env[k]
		if !ok || v == "" {
			s.check("fs.file-env "+k, false, "%s is not set", k)
			continue
		}
		info, found := s.fs.stat(v)
		s.check("fs.file-env "+k, found && !info.isDir(), "%s = %q: %s", k, v, describe(info, found))
	}
}

func (s *staticRun) labels() {
	for _, k := range slices.Sorted(maps.Keys(s.want.Labels)) {
		v, ok := s.cfg.Labels[k]
		want := s.want.Labels[k]
		s.check("config.label "+k, ok && v != "" && (want == "" || v == want), "%s = %s, want %s", k, quoteOrUnset(v, ok), orAny(want))
	}
}

func (s *staticRun) commands() {
	pathEnv := s.env["PATH"]
	for _, c := range s.want.Commands {
		if found, info, ok := s.fs.lookPath(c, pathEnv); ok {
			s.check("fs.command "+c, true, "%s -> %s", found, info.Path)
		} else {
			s.check("fs.command "+c, false, "%s is not on PATH %q", c, pathEnv)
		}
	}
	for _, c := range s.want.Absent {
		if found, _, ok := s.fs.lookPath(c, pathEnv); ok {
			s.check("fs.absent "+c, false, "%s is on PATH at %s, want absent", c, found)
		} else {
			s.check("fs.absent "+c, true, "%s is not on PATH", c)
		}
	}
}

func (s *staticRun) dirs() {
	w := s.want
	for _, d := range dedupe(w.Dirs) {
		info, ok := s.fs.stat(d)
		switch {
		case !ok || !info.isDir():
			s.check("fs.dir "+d, false, "%s", describe(info, ok))
		case info.Uid != w.UID || info.Gid != w.GID:
			s.check("fs.dir "+d, false, "owned by %d:%d, want %d:%d", info.Uid, info.Gid, w.UID, w.GID)
		case info.Mode&0o200 == 0:
			s.check("fs.dir "+d, false, "mode %o is not writable by its owner", info.Mode&0o777)
		default:
			s.check("fs.dir "+d, true, "directory %d:%d mode %o", info.Uid, info.Gid, info.Mode&0o777)
		}
	}
	for _, d := range dedupe(w.RootOwned) {
		info, ok := s.fs.stat(d)
		s.check("fs.root-owned "+d, ok && info.Uid == 0 && info.Gid == 0, "%s", describe(info, ok))
	}
	if w.Tmp {
		info, ok := s.fs.stat("/tmp")
		s.check("fs.tmp", ok && info.isDir() && info.Mode&0o1777 == 0o1777,
			"/tmp: %s, want a directory with mode 1777", describe(info, ok))
	}
}

// parseNixConf reads nix.conf "key = value" lines into their values.
func parseNixConf(b []byte) map[string]string {
	out := map[string]string{}
	for line := range strings.SplitSeq(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		if k, v, ok := strings.Cut(line, "="); ok {
			out[strings.TrimSpace(k)] = strings.Join(strings.Fields(v), " ")
		}
	}
	return out
}

// checkNixConf is shared by the static and the container nix.conf checks.
func checkNixConf(conf map[string]string, want *NixExpect) (bool, string) {
	var bad []string
	if conf["sandbox"] != "false" {
		bad = append(bad, fmt.Sprintf("sandbox = %q, want false", conf["sandbox"]))
	}
	feats := strings.Fields(conf["experimental-features"])
	wantFeats := want.Features
	if wantFeats == nil {
		wantFeats = DefaultNixFeatures
	}
	if !sameSet(feats, wantFeats) {
		bad = append(bad, fmt.Sprintf("experimental-features = %q, want %q", strings.Join(feats, " "), strings.Join(wantFeats, " ")))
	}
	if len(bad) > 0 {
		return false, strings.Join(bad, "; ")
	}
	return true, fmt.Sprintf("sandbox = false, experimental-features = %s", strings.Join(feats, " "))
}

func (s *staticRun) nix() {
	n := s.want.Nix
	if n == nil {
		return
	}
	confDir, ok := s.env["NIX_CONF_DIR"]
	s.check("config.env NIX_CONF_DIR", ok && confDir != "" && (n.ConfDir == "" || confDir == n.ConfDir),
		"NIX_CONF_DIR = %s, want %s", quoteOrUnset(confDir, ok), orAny(n.ConfDir))
	if n.BundledNixpkgs {
		s.bundledNixpkgs(confDir)
	}
	if confDir != "" {
		conf := path.Join(confDir, "nix.conf")
		if data, err := s.fs.readFile(conf); err != nil {
			s.check("fs.nix-conf", false, "%v", err)
		} else {
			good, detail := checkNixConf(parseNixConf(data), n)
			s.check("fs.nix-conf", good, "%s: %s", conf, detail)
		}
	}
	info, ok := s.fs.stat("/nix/store")
	s.check("fs.nix-store", ok && info.isDir() && info.Uid == s.want.UID && info.Mode&0o200 != 0,
		"/nix/store: %s, want a directory the user (uid %d) owns and can write", describe(info, ok), s.want.UID)
	found, _, ok := s.fs.lookPath("nix", s.env["PATH"])
	s.check("fs.nix-command", ok, "nix on PATH: %s", cmp.Or(found, "none"))
}

// bundledNixpkgs checks that NIX_PATH names a nixpkgs source inside the
// image, not one resolved at run time (flake:nixpkgs, channel:, a URL), and
// that the flake registry pins nixpkgs to the same source.
func (s *staticRun) bundledNixpkgs(confDir string) {
	np, ok := s.env["NIX_PATH"]
	var src string
	for _, entry := range strings.Split(np, ":") {
		if v, found := strings.CutPrefix(entry, "nixpkgs="); found {
			src = v
		}
	}
	info, found := s.fs.stat(path.Join(src, "default.nix"))
	s.check("config.env NIX_PATH", strings.HasPrefix(src, "/nix/store/") && found && !info.isDir(),
		"NIX_PATH = %s: want nixpkgs=<a nixpkgs source in the image's store>; %s/default.nix: %s",
		quoteOrUnset(np, ok), src, describe(info, found))
	if confDir == "" {
		return
	}
	reg := path.Join(confDir, "registry.json")
	data, _ := s.fs.readFile(reg)
	pinned := registryPath(data, "nixpkgs")
	s.check("fs.nix-registry", pinned != "" && pinned == src,
		"%s pins nixpkgs to %s, want the NIX_PATH nixpkgs %s", reg, cmp.Or(pinned, "none"), cmp.Or(src, "none"))
}

// registryPath is the path a version-2 flake registry maps the indirect
// flake id to, or "".
func registryPath(data []byte, id string) string {
	var reg struct {
		Flakes []struct {
			From struct{ Type, ID string }
			To   struct{ Type, Path string }
		}
	}
	if json.Unmarshal(data, &reg) != nil {
		return ""
	}
	for _, f := range reg.Flakes {
		if f.From.Type == "indirect" && f.From.ID == id && f.To.Type == "path" {
			return f.To.Path
		}
	}
	return ""
}

func (s *staticRun) nixLd() {
	if s.want.NixLd == nil {
		return
	}
	if s.loader == "" {
		s.check("fs.nix-ld-loader", false, "no conventional loader path known for %s; set NixLd.Loader", s.plat.Architecture)
		s.noForeign = "no loader path for this platform"
		return
	}
	cands := foreignCandidateFiles(s.fs, s.env["PATH"])
	link, ok := s.fs.lstat(s.loader)
	target, tok := s.fs.stat(s.loader)
	switch {
	case !ok:
		s.check("fs.nix-ld-loader", false, "%s does not exist", s.loader)
	case link.Typeflag != tar.TypeSymlink:
		s.check("fs.nix-ld-loader", false, "%s is not a symlink: %s", s.loader, describe(link, ok))
	case !tok || !target.isExec():
		s.check("fs.nix-ld-loader", false, "%s -> %s, which is not an executable in the image", s.loader, link.Linkname)
	default:
		s.check("fs.nix-ld-loader", true, "%s -> %s", s.loader, target.Path)
		// One pass for the loader and the programs a foreign-ELF check may use.
		files := []string{target.Path}
		for _, c := range cands {
			files = append(files, c.file)
		}
		if err := s.fs.readFiles(files...); err == nil && bytes.Contains(s.fs.contents[target.Path], []byte(standinMarker)) {
			s.noForeign = fmt.Sprintf("needs real nix-ld: %s is the offline stand-in for nix-ld, not real nix-ld", target.Path)
		}
	}
	ld, ok := s.env["NIX_LD"]
	info, found := s.fs.stat(ld)
	s.check("config.env NIX_LD", ok && ld != "" && found && !info.isDir(),
		"NIX_LD = %s: %s", quoteOrUnset(ld, ok), describe(info, found && ld != ""))
	lp, ok := s.env["NIX_LD_LIBRARY_PATH"]
	var missing []string
	for _, d := range strings.Split(lp, ":") {
		if i, found := s.fs.stat(d); d != "" && (!found || !i.isDir()) {
			missing = append(missing, d)
		}
	}
	switch {
	case !ok || lp == "":
		s.check("config.env NIX_LD_LIBRARY_PATH", false, "NIX_LD_LIBRARY_PATH = %s, want set", quoteOrUnset(lp, ok))
	case len(missing) > 0:
		s.check("config.env NIX_LD_LIBRARY_PATH", false, "entries missing from the image: %s", strings.Join(missing, ", "))
	default:
		s.check("config.env NIX_LD_LIBRARY_PATH", true, "%d directories, all present", len(strings.Split(lp, ":")))
	}
	if libs := s.want.NixLd.Libraries; len(libs) > 0 || s.want.NixLd.OnlyLibraries {
		good, detail := checkLibraries(lp, libs, s.want.NixLd.OnlyLibraries)
		s.check("config.nix-ld-libraries", good, "%s", detail)
	}
	if s.noForeign == "" {
		s.foreign, s.noForeign = findForeignELF(s.fs, cands, s.loader, s.plat)
	}
}

func describe(i fileInfo, ok bool) string {
	if !ok {
		return "does not exist"
	}
	kind := map[byte]string{tar.TypeDir: "directory", tar.TypeSymlink: "symlink", tar.TypeLink: "hard link", tar.TypeReg: "file"}[i.Typeflag]
	if kind == "" {
		kind = fmt.Sprintf("type %q", i.Typeflag)
	}
	return fmt.Sprintf("%s %s owned by %d:%d mode %o", kind, i.Path, i.Uid, i.Gid, i.Mode&0o1777)
}

func quoteOrUnset(v string, ok bool) string {
	if !ok {
		return "unset"
	}
	return strconv.Quote(v)
}

func orAny(s string) string {
	if s == "" {
		return "any non-empty value"
	}
	return strconv.Quote(s)
}

func dedupe(in []string) (out []string) {
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func sameSet(a, b []string) bool {
	set := func(s []string) []string { return slices.Compact(slices.Sorted(slices.Values(s))) }
	return slices.Equal(set(a), set(b))
}

// storeName is the <name>-<version> part of a /nix/store path.
func storeName(p string) string {
	rest, ok := strings.CutPrefix(p, "/nix/store/")
	if !ok {
		return ""
	}
	rest, _, _ = strings.Cut(rest, "/")
	_, name, _ := strings.Cut(rest, "-")
	return name
}

// isPackage says whether a store name is package lib at some version: the
// name, then "-" and a version starting with a digit, so "util" does not
// match "util-linux-2.41".
func isPackage(name, lib string) bool {
	rest, ok := strings.CutPrefix(name, lib)
	if !ok {
		return false
	}
	return rest == "" || len(rest) > 1 && rest[0] == '-' && rest[1] >= '0' && rest[1] <= '9'
}

// checkLibraries judges NIX_LD_LIBRARY_PATH against the expected libraries.
func checkLibraries(lp string, libs []string, only bool) (bool, string) {
	var names, missing, extra []string
	for e := range strings.SplitSeq(lp, ":") {
		if e == "" {
			continue
		}
		names = append(names, storeName(e))
		if only && !slices.ContainsFunc(libs, func(l string) bool { return isPackage(storeName(e), l) }) {
			extra = append(extra, e)
		}
	}
	for _, l := range libs {
		if !slices.ContainsFunc(names, func(n string) bool { return isPackage(n, l) }) {
			missing = append(missing, l)
		}
	}
	detail := fmt.Sprintf("NIX_LD_LIBRARY_PATH has %s", strings.Join(names, " "))
	if len(missing) > 0 {
		detail += fmt.Sprintf("; missing %s", strings.Join(missing, " "))
	}
	if len(extra) > 0 {
		detail += fmt.Sprintf("; not asked for: %s", strings.Join(extra, " "))
	}
	return len(missing) == 0 && len(extra) == 0, detail
}
