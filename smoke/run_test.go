package smoke

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// runCommandsMarker precedes the README block of documented run commands.
const runCommandsMarker = "<!-- run-commands:"

// readmeImage is the image the README's run commands name.
const readmeImage = "ghcr.io/nothingnesses/agent-images/pi:latest"

// ownerMarker is the file the checks create in /workspace; on the host it
// must belong to the user who ran the command.
const ownerMarker = "/workspace/.agent-images-smoke-owner"

// readmeRunCommands returns the command lines of README.md's Run block.
func readmeRunCommands(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines, err := runCommandLines(string(b))
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	return lines
}

// runCommandLines finds the fenced block after the marker and returns its
// lines that are not comments or blank.
func runCommandLines(readme string) ([]string, error) {
	_, rest, found := strings.Cut(readme, runCommandsMarker)
	if !found {
		return nil, fmt.Errorf("no %q marker before the run commands", runCommandsMarker)
	}
	_, rest, found = strings.Cut(rest, "```sh\n")
	if !found {
		return nil, fmt.Errorf("no ```sh block after the %q marker", runCommandsMarker)
	}
	block, _, found := strings.Cut(rest, "```")
	if !found {
		return nil, fmt.Errorf("the run commands block is not closed")
	}
	var out []string
	for _, l := range strings.Split(block, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the run commands block has no command")
	}
	return out, nil
}

// runCommand is one documented command, as a test runs it for one user.
type runCommand struct {
	line string
	// engine is "podman" (rootless, as the user), "sudo podman" (rootful)
	// or "docker".
	engine string
	// flags are the command's own, between `run` and the image, with
	// $(id -u), $(id -g) and $PWD filled in and --rm and -it dropped (the
	// checks add --rm; there is no terminal).
	flags []string
	// innerUID is the uid the agent runs as inside the container.
	innerUID int
	// workspace is the host directory mounted at /workspace, if any.
	workspace string
	// uid1000Only: the README says it works only for a user with uid 1000.
	uid1000Only bool
}

// parseRunCommand reads one README command for a user with uid:gid whose
// project is pwd. imageUID is the image's user, who the agent runs as unless
// a flag says otherwise (Podman 4.3 keeps the image's user under a plain
// --userns=keep-id, mapping only the host uid to itself).
func parseRunCommand(line string, uid, gid int, pwd string, imageUID int) (runCommand, error) {
	rc := runCommand{line: line, innerUID: imageUID}
	code, comment, _ := strings.Cut(line, " #")
	rc.uid1000Only = strings.Contains(comment, "uid 1000 only")
	words, err := shellWords(code, map[string]string{
		"$(id -u)": strconv.Itoa(uid),
		"$(id -g)": strconv.Itoa(gid),
		"$PWD":     pwd,
	})
	if err != nil {
		return rc, fmt.Errorf("%q: %w", line, err)
	}
	switch {
	case len(words) > 3 && words[0] == "sudo" && words[1] == "podman" && words[2] == "run":
		rc.engine, words = "sudo podman", words[3:]
	case len(words) > 2 && (words[0] == "podman" || words[0] == "docker") && words[1] == "run":
		rc.engine, words = words[0], words[2:]
	default:
		return rc, fmt.Errorf("%q is not a `podman run`, `sudo podman run` or `docker run` command", line)
	}
	img := slices.Index(words, readmeImage)
	if img < 0 {
		return rc, fmt.Errorf("%q does not run %s", line, readmeImage)
	}
	if img != len(words)-1 {
		return rc, fmt.Errorf("%q passes arguments after the image: %q", line, words[img+1:])
	}
	takesValue := map[string]bool{"--user": true, "-u": true, "--userns": true, "-v": true, "--volume": true, "--workdir": true, "-w": true, "-e": true, "--env": true}
	for i := 0; i < img; i++ {
		flag, value, inline := strings.Cut(words[i], "=")
		if !inline && takesValue[flag] {
			if i+1 >= img {
				return rc, fmt.Errorf("%q: %s needs a value", line, flag)
			}
			value = words[i+1]
		}
		switch flag {
		case "--rm", "-it", "-i", "-t":
			continue
		case "--user", "-u":
			u, _, _ := strings.Cut(value, ":")
			n, err := strconv.Atoi(u)
			if err != nil {
				return rc, fmt.Errorf("%q: --user %s is not numeric", line, value)
			}
			rc.innerUID = n
		case "--userns":
			if opts, ok := strings.CutPrefix(value, "keep-id:"); ok && !slices.ContainsFunc(words[:img], isUserFlag) {
				for _, o := range strings.Split(opts, ",") {
					if v, ok := strings.CutPrefix(o, "uid="); ok {
						if rc.innerUID, err = strconv.Atoi(v); err != nil {
							return rc, fmt.Errorf("%q: keep-id uid %q is not numeric", line, v)
						}
					}
				}
			}
		case "-v", "--volume":
			src, dst, _ := strings.Cut(value, ":")
			if dst == "/workspace" {
				rc.workspace = src
			}
		}
		rc.flags = append(rc.flags, words[i])
		if !inline && takesValue[flag] {
			i++
			rc.flags = append(rc.flags, words[i])
		}
	}
	return rc, nil
}

func isUserFlag(w string) bool {
	return w == "--user" || w == "-u" || strings.HasPrefix(w, "--user=")
}

// shellWords splits a command line as sh would for the simple forms the
// README uses: words, double-quoted words, and the substitutions given.
// Anything else a shell would expand is an error, so a README change the
// test cannot follow fails loudly instead of running something else.
func shellWords(s string, subst map[string]string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"':
			quoted, inWord = !quoted, true
			i++
		case !quoted && (c == ' ' || c == '\t'):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
			i++
		case c == '$' || c == '`':
			matched := false
			for k, v := range subst {
				if strings.HasPrefix(s[i:], k) {
					cur.WriteString(v)
					i += len(k)
					matched, inWord = true, true
					break
				}
			}
			if !matched {
				return nil, fmt.Errorf("cannot expand %q", s[i:])
			}
		case c == '\'' || c == '\\' || c == ';' || c == '|' || c == '&' || c == '<' || c == '>':
			return nil, fmt.Errorf("unsupported shell syntax %q", string(c))
		default:
			cur.WriteByte(c)
			inWord = true
			i++
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated double quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func TestParseRunCommand(t *testing.T) {
	const img = readmeImage
	tests := []struct {
		name, line string
		want       runCommand
		wantErr    string
	}{
		{
			name: "keep-id with uid",
			line: `podman run --rm -it --userns=keep-id:uid=1000,gid=1000 -v "$PWD:/workspace" ` + img,
			want: runCommand{engine: "podman", flags: []string{"--userns=keep-id:uid=1000,gid=1000", "-v", "/p:/workspace"}, innerUID: 1000, workspace: "/p"},
		},
		{
			name: "agent-box",
			line: `podman run --rm -it --userns keep-id --user "$(id -u):$(id -g)" --workdir /workspace -v "$PWD:/workspace" ` + img,
			want: runCommand{engine: "podman", flags: []string{"--userns", "keep-id", "--user", "1001:1002", "--workdir", "/workspace", "-v", "/p:/workspace"}, innerUID: 1001, workspace: "/p"},
		},
		{
			name: "rootful podman",
			line: `sudo podman run --rm -it --user "$(id -u):$(id -g)" -v "$PWD:/workspace" ` + img,
			want: runCommand{engine: "sudo podman", flags: []string{"--user", "1001:1002", "-v", "/p:/workspace"}, innerUID: 1001, workspace: "/p"},
		},
		{
			name: "no flags",
			line: `docker run --rm -it ` + img,
			want: runCommand{engine: "docker", innerUID: 1000},
		},
		{
			name: "keep-id alone keeps the image's user",
			line: `podman run --rm -it --userns=keep-id -v "$PWD:/workspace" ` + img + ` # uid 1000 only`,
			want: runCommand{engine: "podman", flags: []string{"--userns=keep-id", "-v", "/p:/workspace"}, innerUID: 1000, workspace: "/p", uid1000Only: true},
		},
		{name: "other variable", line: `podman run -v "$HOME:/workspace" ` + img, wantErr: "cannot expand"},
		{name: "single quotes", line: `podman run -e 'A=b' ` + img, wantErr: "unsupported shell syntax"},
		{name: "other image", line: `podman run --rm busybox`, wantErr: "does not run"},
		{name: "arguments after the image", line: `podman run ` + img + ` --version`, wantErr: "arguments after the image"},
		{name: "not run", line: `podman pull ` + img, wantErr: "is not a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRunCommand(tc.line, 1001, 1002, "/p", 1000)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseRunCommand(%q) error = %v, want one containing %q", tc.line, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseRunCommand(%q) error = %v", tc.line, err)
			}
			tc.want.line = tc.line
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("parseRunCommand(%q) = %+v, want %+v", tc.line, got, tc.want)
			}
		})
	}
}

// TestREADMERunCommands: the README's block parses, names every engine the
// issue asks for, and keeps agent-box's exact call.
func TestREADMERunCommands(t *testing.T) {
	lines := readmeRunCommands(t)
	engines := map[string]bool{}
	for _, l := range lines {
		rc, err := parseRunCommand(l, 1001, 1001, "/p", 1000)
		if err != nil {
			t.Fatal(err)
		}
		engines[rc.engine] = true
	}
	for _, e := range []string{"podman", "sudo podman", "docker"} {
		if !engines[e] {
			t.Errorf("README run commands have no %q command", e)
		}
	}
	agentBox := `podman run --rm -it --userns keep-id --user "$(id -u):$(id -g)" --workdir /workspace -v "$PWD:/workspace" ` + readmeImage
	if !slices.Contains(lines, agentBox) {
		t.Errorf("README run commands lack agent-box's call %q", agentBox)
	}
}

// loadOnce wraps a runtime so that each image is loaded once for all the
// commands run with it, and removed when the test ends.
type loadOnce struct {
	Runtime
	mu     sync.Mutex
	loaded map[v1.Hash]string
}

func newLoadOnce(t *testing.T, rt Runtime) *loadOnce {
	l := &loadOnce{Runtime: rt, loaded: map[v1.Hash]string{}}
	t.Cleanup(func() {
		for _, ref := range l.loaded {
			_ = rt.Remove(context.Background(), ref)
		}
	})
	return l
}

func (l *loadOnce) Load(ctx context.Context, img v1.Image) (string, error) {
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if ref, ok := l.loaded[d]; ok {
		return ref, nil
	}
	ref, err := l.Runtime.Load(ctx, img)
	if err == nil {
		l.loaded[d] = ref
	}
	return ref, err
}

func (l *loadOnce) Remove(context.Context, string) error { return nil }

// runImages are the images the documented commands run in the test: the
// default agent image and the withNix test image.
var runImages = []string{"pi", "test-nix"}

// runUIDs are the host users: the image's own uid, and another one.
var runUIDs = []int{1000, 1001}

// TestRunCommands runs every command of README's Run block, as it is
// written, for a user with uid 1000 and one with uid 1001 (rootless Podman
// as that user; rootful Podman and Docker with that user's ids), with pi and
// test-nix, natively and under emulation. Where the agent runs as the image's
// user, the whole catalogue must pass; as another uid, the any-uid checks
// (AnyUser), a user name included: Docker's --user uid has none in the
// image, so the entrypoint gives it one. Either way a file the agent creates
// in /workspace must belong to the host user.
func TestRunCommands(t *testing.T) {
	testenv.Require(t, "nix", "podman")
	lines := readmeRunCommands(t)
	built := flakeImagesBuilt(t)
	rootful := newLoadOnce(t, podman(t))
	var dockerRT Runtime
	dockerReason := ""
	if docker.once.Do(startDocker); docker.reason != "" {
		dockerReason = docker.reason
	} else {
		dockerRT = newLoadOnce(t, dockerRuntime(t))
	}
	expects := map[string]func(string) Expect{}
	for _, fi := range flakeImages {
		expects[fi.attr] = fi.expect
	}
	for _, uid := range runUIDs {
		u := testenv.RootlessUser(t, uid)
		rt, err := rootlessRuntime(u.Prefix()...)
		if err != nil {
			t.Fatalf("rootless podman of %s (uid %d): %v", u.Name, uid, err)
		}
		rootless := newLoadOnce(t, rt)
		for _, s := range flakeSystems {
			if ok, how, err := CanRun(s.plat); err != nil || !ok {
				msg := fmt.Sprintf("%s images cannot run here: %s %v (scripts/setup-host.sh registers qemu)", s.system, how, err)
				if testenv.Strict() {
					t.Fatal(msg)
				}
				t.Log(msg)
				continue
			}
			for _, attr := range runImages {
				b, ok := built[s.system][attr]
				if !ok {
					t.Fatalf("the flake has no packages.%s.%s", s.system, attr)
				}
				img := loadArchive(t, b.Out)
				for i, line := range lines {
					name := fmt.Sprintf("uid%d/%s/%s/%d", uid, s.system, attr, i)
					t.Run(name, func(t *testing.T) {
						pwd, err := os.MkdirTemp(u.Dir, "project-")
						if err != nil {
							t.Fatal(err)
						}
						u.Chown(t, pwd)
						rc, err := parseRunCommand(line, u.UID, u.GID, pwd, 1000)
						if err != nil {
							t.Fatal(err)
						}
						t.Logf("%s (as %s, uid %d)", line, u.Name, u.UID)
						var rt Runtime
						switch rc.engine {
						case "podman":
							rt = rootless
						case "sudo podman":
							rt = rootful
						case "docker":
							if dockerRT == nil {
								t.Skip("docker cannot run here: " + dockerReason)
							}
							rt = dockerRT
						}
						want := AnyUser("/workspace")
						asImageUser := rc.innerUID == 1000
						if asImageUser {
							want = expects[attr](b.Image.MainProgram)
						}
						want.Touch = []string{ownerMarker}
						logf := func(f string, args ...any) {
							t.Logf("%s "+f, append([]any{time.Now().Format("15:04:05.0")}, args...)...)
						}
						rep, err := Test(t.Context(), img, want, WithRuntime(rt), WithPlatform(s.plat), WithRunFlags(rc.flags...), WithLogf(logf))
						if err != nil {
							t.Fatalf("Test(%s) error: %v", attr, err)
						}
						t.Logf("%s", rep)
						if rep.Mode != ModeContainer {
							t.Fatalf("Test(%s) mode = %s (%s), want container", attr, rep.Mode, rep.Reason)
						}
						failed := rep.Failed()
						if rc.uid1000Only && u.UID != 1000 {
							// Documented not to work: only /workspace may fail.
							failed = slices.DeleteFunc(failed, func(r Result) bool {
								return r.Check == "run.dir /workspace" || r.Check == "run.touch "+ownerMarker
							})
						}
						for _, r := range failed {
							t.Errorf("%s: %s", line, r)
						}
						// Docker adds no passwd entry for a --user uid
						// (Podman does): the entrypoint adds it, and the
						// name checks pass there too.
						var wantSkip []string
						if asImageUser {
							wantSkip = wantStandinSkips(want)
						}
						if got := checks(rep.Results, Skip); !slices.Equal(got, wantSkip) {
							t.Errorf("Test(%s) skipped %q, want %q", attr, got, wantSkip)
						}
						if rc.workspace != "" && !(rc.uid1000Only && u.UID != 1000) {
							checkHostOwner(t, filepath.Join(rc.workspace, filepath.Base(ownerMarker)), u.UID, u.GID)
						}
					})
				}
			}
		}
	}
}

// checkHostOwner: what the agent wrote in the mounted project belongs to the
// user who ran the command.
func checkHostOwner(t *testing.T, path string, uid, gid int) {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Errorf("the file the agent created in /workspace is not on the host: %v", err)
		return
	}
	sys := st.Sys().(*syscall.Stat_t)
	if int(sys.Uid) != uid || int(sys.Gid) != gid {
		t.Errorf("%s on the host belongs to %d:%d, want the user's %d:%d", path, sys.Uid, sys.Gid, uid, gid)
	}
}
