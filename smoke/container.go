package smoke

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// runTimeout bounds one container run; arm64 under qemu is slow, not this slow.
const runTimeout = 5 * time.Minute

// foreignMount is where the patched foreign ELF is mounted in the container.
const foreignMount = "/.agent-images-smoke"

// probe is one container check: a POSIX sh snippet that reports what it finds
// as key=value lines, and the judgement of those lines. All probes run in one
// `sh -c` script, because a container start per check is slow under qemu.
type probe struct {
	check string
	sh    string
	eval  func(v vals) (Status, string)
}

// vals are the key=value lines one probe printed, in order.
type vals map[string][]string

func (v vals) get(k string) string {
	if s := v[k]; len(s) > 0 {
		return s[len(s)-1]
	}
	return ""
}

// shellHelpers are shared by every probe: r prints a key, rl a key per line
// of a value, w says whether a directory is writable by creating a file in
// it, own prints uid:gid:mode.
const shellHelpers = `r() { printf '%s.%s=%s\n' "$P" "$1" "$2"; }
rl() { printf '%s\n' "$2" | while IFS= read -r l; do printf '%s.%s=%s\n' "$P" "$1" "$l"; done; }
w() { if [ ! -d "$1" ]; then echo missing; elif ( : > "$1/.agent-images-smoke.$$" ) 2>/dev/null; then rm -f "$1/.agent-images-smoke.$$"; echo writable; else echo not-writable; fi; }
own() { if [ ! -e "$1" ]; then echo missing; else stat -c '%u:%g:%a' "$1" 2>/dev/null || echo unknown; fi; }
`

func q(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func ok(good bool, format string, args ...any) (Status, string) {
	if good {
		return Pass, fmt.Sprintf(format, args...)
	}
	return Fail, fmt.Sprintf(format, args...)
}

// ownerCheck judges an own() value against uid:gid.
func ownerCheck(got string, uid, gid int) (Status, string) {
	switch got {
	case "missing", "":
		return Fail, "does not exist"
	case "unknown":
		return Skip, "stat is not in the image; ownership was checked statically only"
	}
	f := strings.Split(got, ":")
	if len(f) != 3 {
		return Fail, "unexpected stat output " + strconv.Quote(got)
	}
	want := fmt.Sprintf("%d:%d", uid, gid)
	return ok(f[0]+":"+f[1] == want, "owner %s:%s mode %s, want %s", f[0], f[1], f[2], want)
}

// writable is a probe that the user can write dir, and then what owned says
// of its own() value.
func writable(check, dir string, owned func(own string) (Status, string)) probe {
	return probe{check, fmt.Sprintf(`r w "$(w %[1]s)"; r o "$(own %[1]s)"`, q(dir)), func(v vals) (Status, string) {
		if v.get("w") != "writable" {
			return Fail, fmt.Sprintf("%s is %s for the user", dir, v.get("w"))
		}
		st, detail := owned(v.get("o"))
		return st, "writable, " + detail
	}}
}

// probes builds the container catalogue for what st expects, and the
// tmpfs mounts the container needs for it.
func (st *staticRun) probes() (ps []probe, tmpfs []string) {
	w := st.want
	add := func(check, sh string, eval func(vals) (Status, string)) {
		ps = append(ps, probe{check, sh, eval})
	}
	// equal checks the one value sh prints as v, when want is set.
	equal := func(check, sh, what, want string) {
		if want != "" {
			add(check, sh, func(v vals) (Status, string) {
				return ok(v.get("v") == want, "%s = %q, want %q", what, v.get("v"), want)
			})
		}
	}
	equal("run.whoami", `r v "$(whoami 2>&1)"`, "whoami", w.User)
	if w.User != "" {
		equal("run.id", `r v "$(id -u 2>&1):$(id -g 2>&1)"`, "id -u:id -g", fmt.Sprintf("%d:%d", w.UID, w.GID))
	}
	if w.NonRoot {
		add("run.nonroot", `r u "$(id -u 2>&1)"`, func(v vals) (Status, string) {
			u := v.get("u")
			return ok(u != "0" && u != "", "id -u = %q, want non-zero", u)
		})
	}
	equal("run.home", `r v "${HOME-<unset>}"`, "HOME", w.Home)
	equal("run.pwd", `r v "$(pwd)"`, "pwd", w.WorkingDir)
	for _, c := range w.Commands {
		add("run.command "+c, `r v "$(command -v `+q(c)+`)"`, func(v vals) (Status, string) {
			return ok(v.get("v") != "", "command -v %s = %q", c, v.get("v"))
		})
	}
	for _, c := range w.Absent {
		add("run.absent "+c, `r v "$(command -v `+q(c)+`)"`, func(v vals) (Status, string) {
			return ok(v.get("v") == "", "command -v %s = %q, want nothing", c, v.get("v"))
		})
	}
	for _, k := range slices.Sorted(maps.Keys(w.Env)) {
		add("run.env "+k, fmt.Sprintf(`r v "${%[1]s+set:$%[1]s}"`, k), func(v vals) (Status, string) {
			got, set := strings.CutPrefix(v.get("v"), "set:")
			return ok(set && got == w.Env[k], "%s = %s, want %q", k, quoteOrUnset(got, set), w.Env[k])
		})
	}
	for _, k := range w.FileEnv {
		add("run.file-env "+k, fmt.Sprintf(`v="${%s-}"; if [ -z "$v" ]; then r v unset; elif [ -f "$v" ] && [ -r "$v" ]; then r v "file:$v"; else r v "missing:$v"; fi`, k), func(v vals) (Status, string) {
			got := v.get("v")
			return ok(strings.HasPrefix(got, "file:"), "%s: %s, want a readable file", k, got)
		})
	}
	for _, d := range dedupe(w.Dirs) {
		ps = append(ps, writable("run.dir "+d, d, func(o string) (Status, string) { return ownerCheck(o, w.UID, w.GID) }))
	}
	for _, d := range dedupe(w.RootOwned) {
		add("run.root-owned "+d, fmt.Sprintf(`r o "$(own %s)"`, q(d)), func(v vals) (Status, string) {
			return ownerCheck(v.get("o"), 0, 0)
		})
	}
	if w.Tmp {
		ps = append(ps, writable("run.tmp", "/tmp", func(o string) (Status, string) {
			if o == "unknown" {
				return Pass, "stat is not in the image"
			}
			f := strings.Split(o, ":")
			return ok(len(f) == 3 && f[2] == "1777", "uid:gid:mode %s, want mode 1777", o)
		}))
	}
	if w.TmpfsUnderConfig {
		cfg := path.Join(w.Home, ".config")
		sub := path.Join(cfg, "sub")
		tmpfs = append(tmpfs, sub)
		add("run.tmpfs-under-config", fmt.Sprintf(`while read -r _ mp t _; do [ "$mp" = %[2]s ] && r m "$t"; done < /proc/self/mounts; r w "$(w %[1]s)"; r o "$(own %[1]s)"`, q(cfg), q(sub)), func(v vals) (Status, string) {
			if v.get("m") != "tmpfs" {
				return Fail, fmt.Sprintf("no tmpfs mounted at %s (found %q)", sub, v.get("m"))
			}
			if v.get("w") != "writable" {
				return Fail, fmt.Sprintf("with a tmpfs at %s, %s is %s", sub, cfg, v.get("w"))
			}
			st, detail := ownerCheck(v.get("o"), w.UID, w.GID)
			return st, fmt.Sprintf("with a tmpfs at %s, %s is writable, %s", sub, cfg, detail)
		})
	}
	for _, d := range dedupe(w.Writable) {
		val := q(d)
		if k, isVar := strings.CutPrefix(d, "$"); isVar {
			val = `"${` + k + `-}"`
		}
		add("run.writable "+d, fmt.Sprintf(`d=%s; r p "$d"; r w "$(w "$d")"; r o "$(own "$d")"; r u "$(id -u)"`, val), func(v vals) (Status, string) {
			p := v.get("p")
			if p == "" {
				return Fail, d + " is unset or empty"
			}
			if v.get("w") != "writable" {
				return Fail, fmt.Sprintf("%s (%s) is %s for uid %s", d, p, v.get("w"), v.get("u"))
			}
			o := strings.Split(v.get("o"), ":")
			if v.get("o") == "unknown" || len(o) != 3 {
				return Skip, fmt.Sprintf("%s (%s) is writable; its owner is unknown (stat is not in the image)", d, p)
			}
			return ok(o[0] == v.get("u"), "%s (%s) is writable, owner %s:%s, process uid %s", d, p, o[0], o[1], v.get("u"))
		})
	}
	for _, f := range dedupe(w.Touch) {
		add("run.touch "+f, fmt.Sprintf(`if ( : > %s ) 2>/dev/null; then r t created; else r t refused; fi`, q(f)), func(v vals) (Status, string) {
			return ok(v.get("t") == "created", "creating %s: %s", f, v.get("t"))
		})
	}
	if w.UserEntry {
		ps = append(ps, userEntryProbes()...)
	}
	if w.HomeMount != "" {
		imageHome := st.env["HOME"]
		mnt := path.Join(imageHome, w.HomeMount)
		if imageHome != "" {
			tmpfs = append(tmpfs, mnt)
		}
		sh := fmt.Sprintf(`while read -r _ mp t _; do [ "$mp" = %[1]s ] && r m "$t"; done < /proc/self/mounts
d="$HOME"/%[2]s; f=.agent-images-smoke.$$; r p "$d"
if ( : > "$d/$f" ) 2>/dev/null; then [ -e %[1]s/"$f" ] && r seen 1; rm -f "$d/$f"; r w writable; else r w not-writable; fi`, q(mnt), q(w.HomeMount))
		add("run.home-mount", sh, func(v vals) (Status, string) {
			switch {
			case imageHome == "":
				return Fail, "the image sets no HOME"
			case v.get("m") != "tmpfs":
				return Fail, fmt.Sprintf("no tmpfs mounted at %s (found %q)", mnt, v.get("m"))
			case v.get("w") != "writable":
				return Fail, fmt.Sprintf("with a tmpfs at %s, %s is %s", mnt, v.get("p"), v.get("w"))
			}
			return ok(v.get("seen") == "1", "a file written to %s appears in the tmpfs at %s: %v", v.get("p"), mnt, v.get("seen") == "1")
		})
	}
	if w.Nix != nil {
		ps = append(ps, st.nixProbes()...)
	}
	if w.NixLd != nil {
		ps = append(ps, st.nixLdProbes()...)
	}
	return ps, tmpfs
}

// nssWrapperLib is the library an entrypoint could preload to name a uid;
// agent-images' does not, since it would have to match the C library of
// every agent and statically linked agents ignore it.
const nssWrapperLib = "libnss_wrapper.so"

// userEntryProbes check that the process has a passwd and group entry where
// every program finds it: in /etc/passwd and /etc/group themselves (the
// image's, the runtime's additions, or the entrypoint's), with nothing
// preloaded. Where the image has getent, a dynamically linked glibc program,
// it must find the user too, besides whoami and id.
func userEntryProbes() []probe {
	entry := probe{check: "run.user-entry", sh: `u=$(id -u); g=$(id -g); r u "$u"; r g "$g"; r home "${HOME-}"
pu=0; while IFS=: read -r n _ i j _ h _; do [ "$i" = "$u" ] && { pu=1; r pwl "$n:$i:$j:$h"; }; done < /etc/passwd; r pu "$pu"
pg=0; while IFS=: read -r n _ i _; do [ "$i" = "$g" ] && { pg=1; r grl "$n:$i"; }; done < /etc/group; r pg "$pg"
r pre "${LD_PRELOAD-}"; r npw "${NSS_WRAPPER_PASSWD-}"; r ngr "${NSS_WRAPPER_GROUP-}"`}
	entry.eval = func(v vals) (Status, string) {
		u, g := v.get("u"), v.get("g")
		var problems []string
		if v.get("pu") != "1" {
			problems = append(problems, fmt.Sprintf("uid %s is not in /etc/passwd", u))
		}
		if v.get("pg") != "1" {
			problems = append(problems, fmt.Sprintf("gid %s is not in /etc/group", g))
		}
		if v.get("npw") != "" || v.get("ngr") != "" || strings.Contains(v.get("pre"), nssWrapperLib) {
			problems = append(problems, fmt.Sprintf("nss_wrapper is in use (LD_PRELOAD=%q, NSS_WRAPPER_PASSWD=%q, NSS_WRAPPER_GROUP=%q): statically linked programs and programs of another C library do not see its entries",
				v.get("pre"), v.get("npw"), v.get("ngr")))
		}
		if len(problems) > 0 {
			return Fail, strings.Join(problems, "; ")
		}
		return Pass, fmt.Sprintf("uid %s and gid %s are in /etc/passwd (%s) and /etc/group (%s), nothing preloaded", u, g,
			strings.Join(v["pwl"], ", "), strings.Join(v["grl"], ", "))
	}
	name := probe{check: "run.user-name", sh: `v=$(whoami 2>&1); r wrc $?; r w "$v"; v=$(id -un 2>&1); r urc $?; r un "$v"; v=$(id -gn 2>&1); r grc $?; r gn "$v"
if command -v getent >/dev/null 2>&1; then r ge 1
v=$(getent passwd "$(id -u)" 2>&1); r gprc $?; r gp "$v"; v=$(getent group "$(id -g)" 2>&1); r ggrc $?; r gg "$v"; fi`}
	name.eval = func(v vals) (Status, string) {
		detail := fmt.Sprintf("whoami = %q (exit %s), id -un = %q (exit %s), id -gn = %q (exit %s)", v.get("w"), v.get("wrc"), v.get("un"), v.get("urc"), v.get("gn"), v.get("grc"))
		good := v.get("wrc") == "0" && v.get("urc") == "0" && v.get("grc") == "0" && v.get("w") != "" && v.get("w") == v.get("un") && v.get("gn") != ""
		if v.get("ge") == "1" {
			detail += fmt.Sprintf("; getent passwd = %q (exit %s), getent group = %q (exit %s)", v.get("gp"), v.get("gprc"), v.get("gg"), v.get("ggrc"))
			pw, gr := strings.Split(v.get("gp"), ":"), strings.Split(v.get("gg"), ":")
			good = good && v.get("gprc") == "0" && v.get("ggrc") == "0" && len(pw) == 7 && pw[0] == v.get("w") && len(gr) == 4 && gr[0] == v.get("gn")
		}
		return ok(good, "%s", detail)
	}
	return []probe{entry, name}
}

// standin is the line of a probe's output that shows the offline stand-in, or "".
func standin(lines []string) string {
	if i := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, standinMarker) }); i >= 0 {
		return lines[i]
	}
	return ""
}

func (st *staticRun) nixProbes() []probe {
	n, w := st.want.Nix, st.want
	var versionStandin string
	ps := []probe{
		{"run.nix-env", `r c "${NIX_CONF_DIR+set:$NIX_CONF_DIR}"; r p "${NIX_PATH+set:$NIX_PATH}"`, func(v vals) (Status, string) {
			c := strings.TrimPrefix(v.get("c"), "set:")
			p := strings.TrimPrefix(v.get("p"), "set:")
			good := c != "" && (n.ConfDir == "" || c == n.ConfDir) && (p != "" || !n.BundledNixpkgs)
			return ok(good, "NIX_CONF_DIR = %q (want %s), NIX_PATH = %q", c, orAny(n.ConfDir), p)
		}},
		{"run.nix-conf", `if [ -r "${NIX_CONF_DIR-/etc/nix}/nix.conf" ]; then r ok 1; while IFS= read -r l || [ -n "$l" ]; do r l "$l"; done < "${NIX_CONF_DIR-/etc/nix}/nix.conf"; else r ok 0; fi`, func(v vals) (Status, string) {
			if v.get("ok") != "1" {
				return Fail, "$NIX_CONF_DIR/nix.conf is not readable by the user"
			}
			good, detail := checkNixConf(parseNixConf([]byte(strings.Join(v["l"], "\n"))), n)
			return ok(good, "%s", detail)
		}},
		writable("run.nix-store", "/nix/store", func(o string) (Status, string) {
			f := strings.Split(o, ":")
			return ok(len(f) == 3 && f[0] == strconv.Itoa(w.UID), "uid:gid:mode %s, want owner uid %d", o, w.UID)
		}),
	}
	// Once a nix command shows the offline stand-in (nix --version runs
	// first), the checks after it skip with its reason.
	needsNix := func(p probe) probe {
		eval := p.eval
		p.eval = func(v vals) (Status, string) {
			if l := cmp.Or(versionStandin, standin(v["out"])); l != "" {
				versionStandin = l
				return Skip, "needs real Nix; the image has the offline stand-in: " + l
			}
			return eval(v)
		}
		return p
	}
	ps = append(ps, needsNix(exits("run.nix-version", "nix --version", "nix --version")))
	// A package built and installed at run time, offline: the store, the
	// database, the build log, the GC roots and the user's profile must all
	// be writable by the image's user.
	install := exits("run.nix-install", `(
set -e
p=$(nix --extra-experimental-features nix-command build --no-link --print-out-paths --option substituters '' --impure --expr `+q(installExpr)+`)
nix --extra-experimental-features nix-command profile install "$p"
PATH="$HOME/.nix-profile/bin:$PATH" agent-images-smoke
)`, "nix build + nix profile install + run")
	ps = append(ps, needsNix(probe{install.check, install.sh, func(v vals) (Status, string) {
		_, detail := install.eval(v)
		return ok(v.get("rc") == "0" && v.get("out") == installedLine, "%s", detail)
	}}))
	if n.BundledNixpkgs {
		ps = append(ps, needsNix(exits("run.nix-path", `nix-instantiate --eval --expr '(import <nixpkgs/lib>).version'`, "<nixpkgs> from NIX_PATH, offline:")))
	}
	if st.entryStore == "" {
		return append(ps, skipped("run.nix-path-info", "the entrypoint is not in /nix/store, so there is no store path to query"))
	}
	return append(ps, needsNix(exits("run.nix-path-info", "nix path-info "+q(st.entryStore), "nix path-info "+st.entryStore)))
}

// exits is a probe that runs cmd and passes when it exits 0; what names the
// command in the detail, with the exit code and what it printed. The space
// after $( keeps a cmd in parentheses from reading as $(( arithmetic.
func exits(check, cmd, what string) probe {
	return probe{check, `out=$( ` + cmd + ` 2>&1); r rc $?; rl out "$out"`, func(v vals) (Status, string) {
		return ok(v.get("rc") == "0", "%s exit %s: %s", what, v.get("rc"), strings.Join(v["out"], " "))
	}}
}

// skipped is a check that cannot run, and why.
func skipped(check, why string) probe {
	return probe{check: check, eval: func(vals) (Status, string) { return Skip, why }}
}

func (st *staticRun) nixLdProbes() []probe {
	l := st.loader
	ps := []probe{
		{"run.nix-ld-loader", fmt.Sprintf(`[ -L %[1]s ] && r l 1; [ -x %[1]s ] && r x 1; r t "$(readlink %[1]s 2>/dev/null)"`, q(l)), func(v vals) (Status, string) {
			return ok(v.get("l") == "1" && v.get("x") == "1", "%s: symlink=%v executable=%v target %q", l, v.get("l") == "1", v.get("x") == "1", v.get("t"))
		}},
		{"run.nix-ld-env", `r ld "${NIX_LD-}"; [ -n "${NIX_LD-}" ] && [ -e "$NIX_LD" ] && r e 1; r p "${NIX_LD_LIBRARY_PATH-}"`, func(v vals) (Status, string) {
			return ok(v.get("e") == "1" && v.get("p") != "", "NIX_LD = %q (exists: %v), NIX_LD_LIBRARY_PATH = %q", v.get("ld"), v.get("e") == "1", v.get("p"))
		}},
	}
	const check = "run.nix-ld-foreign-elf"
	f := st.foreign
	if f == nil {
		return append(ps, skipped(check, st.noForeign))
	}
	cmd := q(path.Join(foreignMount, f.name))
	for _, a := range f.args {
		cmd += " " + q(a)
	}
	return append(ps, exits(check, cmd, fmt.Sprintf("%s (from %s, interpreter %s rewritten to %s)", f.name, f.file, f.old, l)))
}

// installExpr is a package that needs nothing from outside the image: the
// image's /bin/sh and coreutils write a one-line program. installedLine is
// what that program prints.
const (
	installExpr = `derivation { name = "agent-images-smoke"; system = builtins.currentSystem; builder = "/bin/sh"; ` +
		`args = [ "-c" "PATH=/bin; mkdir -p $out/bin; echo '#!/bin/sh' > $out/bin/agent-images-smoke; ` +
		`echo 'echo agent-images-smoke installed' >> $out/bin/agent-images-smoke; chmod 0755 $out/bin/agent-images-smoke" ]; }`
	installedLine = "agent-images-smoke installed"
)

// script joins the probes into one sh script; each probe's keys are
// prefixed with its index.
func script(ps []probe) string {
	var b strings.Builder
	b.WriteString(shellHelpers)
	for i, p := range ps {
		if p.sh == "" {
			continue
		}
		fmt.Fprintf(&b, "P=p%d\n%s\n", i, p.sh)
	}
	b.WriteString("echo agent-images-smoke-done=1\n")
	return b.String()
}

// parseScript splits the script's output back into each probe's values.
func parseScript(out string, n int) ([]vals, bool) {
	res := make([]vals, n)
	for i := range res {
		res[i] = vals{}
	}
	done := false
	for line := range strings.SplitSeq(out, "\n") {
		if line == "agent-images-smoke-done=1" {
			done = true
			continue
		}
		k, v, found := strings.Cut(line, "=")
		if !found || !strings.HasPrefix(k, "p") {
			continue
		}
		idx, key, found := strings.Cut(k[1:], ".")
		i, err := strconv.Atoi(idx)
		if !found || err != nil || i < 0 || i >= n {
			continue
		}
		res[i][key] = append(res[i][key], v)
	}
	return res, done
}

func runContainerChecks(ctx context.Context, rt Runtime, img v1.Image, st *staticRun, flags []string, logf func(string, ...any)) ([]Result, error) {
	logf("smoke: loading the %s image into %s", st.plat.String(), rt.Name())
	ref, err := rt.Load(ctx, img)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := rt.Remove(context.WithoutCancel(ctx), ref); err != nil {
			logf("smoke: removing %s: %v", ref, err)
		}
	}()
	var results []Result
	add := func(check string, s Status, detail string) {
		results = append(results, Result{Check: check, Status: s, Detail: detail})
	}
	run := func(spec RunSpec) (*RunResult, error) {
		rctx, cancel := context.WithTimeout(ctx, runTimeout)
		defer cancel()
		return rt.Run(rctx, spec)
	}

	if len(st.cfg.Entrypoint) > 0 || len(st.want.Entrypoint) > 0 {
		logf("smoke: running %s --version", ref)
		res, err := run(RunSpec{Image: ref, Platform: st.plat, Flags: flags, Args: []string{"--version"}})
		if err != nil {
			return nil, err
		}
		out := firstLine(res.Stdout + res.Stderr)
		s, detail := ok(res.ExitCode == 0, "%q --version exit %d: %s", st.cfg.Entrypoint, res.ExitCode, out)
		add("run.version", s, detail)
	}

	ps, tmpfs := st.probes()
	// Through the home shim when the image has one: the checks then see the
	// HOME and XDG directories the agent gets.
	entry, args := "sh", []string{"-c", script(ps)}
	if st.viaShim() {
		entry, args = st.cfg.Entrypoint[0], append([]string{"sh"}, args...)
	}
	own := []string{"--entrypoint", entry}
	for _, t := range tmpfs {
		own = append(own, "--tmpfs", t)
	}
	if st.foreign != nil {
		dir, err := os.MkdirTemp("", "agent-images-smoke-elf-*")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		// The container user is not the host user: the file must be readable
		// and executable by anyone.
		if err := os.Chmod(dir, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, st.foreign.name), st.foreign.data, 0o755); err != nil {
			return nil, err
		}
		own = append(own, "-v", dir+":"+foreignMount+":ro")
	}
	spec := RunSpec{Image: ref, Platform: st.plat, Flags: slices.Concat(own, flags), Args: args}
	logf("smoke: running %d checks in one container", len(ps))
	res, err := run(spec)
	if err != nil {
		return nil, err
	}
	got, done := parseScript(res.Stdout, len(ps))
	// No shell, or it died part-way: every probe that printed nothing fails with the reason.
	why := fmt.Sprintf("the check script did not finish (exit %d): %s", res.ExitCode, firstLine(res.Stderr+res.Stdout))
	for i, p := range ps {
		s, detail := Fail, why
		if done || len(got[i]) > 0 || p.sh == "" {
			s, detail = p.eval(got[i])
		}
		add(p.check, s, detail)
	}
	return results, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
