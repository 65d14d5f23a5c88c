package smoke

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"

	legacy "github.com/google/go-containerregistry/pkg/legacy/tarball"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Runtime is a container engine the checks run in. Podman and Docker share
// one implementation because their CLIs agree on everything used here.
type Runtime interface {
	// Name is "podman" or "docker".
	Name() string
	// Load loads exactly img under a fresh, unique tag and returns that tag;
	// it fails if the engine's image ID is not img's digest.
	Load(ctx context.Context, img v1.Image) (string, error)
	// Run runs one container to completion. The error is for the engine
	// failing to start it; the program's own exit code is in the result.
	Run(ctx context.Context, spec RunSpec) (*RunResult, error)
	// Remove drops the tag Load created (the image too, if nothing else uses it).
	Remove(ctx context.Context, ref string) error
}

// RunSpec is one container run: always --rm, without network, never pulling.
type RunSpec struct {
	Image    string
	Platform v1.Platform
	// Flags are more run flags (--entrypoint, --tmpfs, -v, a user's --user),
	// passed as they are before the image.
	Flags []string
	Args  []string // the command, or arguments to the entrypoint
}

// RunResult is how a container run ended.
type RunResult struct {
	ExitCode       int
	Stdout, Stderr string
}

// NewRuntime returns the named runtime ("podman" or "docker"), checked to be
// usable; "" picks podman, else docker.
func NewRuntime(name string) (Runtime, error) {
	switch name {
	case "podman", "docker":
		rt := &cliRuntime{bin: name, pull: name == "podman"}
		if err := rt.probe(); err != nil {
			return nil, err
		}
		return rt, nil
	case "":
		var errs []error
		for _, n := range []string{"podman", "docker"} {
			rt, err := NewRuntime(n)
			if err == nil {
				return rt, nil
			}
			errs = append(errs, err)
		}
		return nil, fmt.Errorf("no container runtime works (install podman, or start a docker daemon and set DOCKER_HOST): %w", errors.Join(errs...))
	default:
		return nil, fmt.Errorf("unknown container runtime %q: want podman or docker", name)
	}
}

type cliRuntime struct {
	bin string
	// prefix runs the engine's CLI behind another command, e.g. setpriv
	// --reuid 1001 ... -- env HOME=... for the rootless Podman of another
	// user (the tests' rootlessRuntime), which pulls images over loopback.
	prefix []string
	// pull hands images over as a registry on loopback (podman) instead
	// of a docker-archive (docker, whose daemon may not share our network).
	pull bool
	// storage serialises the commands that add and remove images. Podman 4
	// loses layers ("layer not known") when an image is removed while
	// another that shares its layers is being loaded, which parallel smoke
	// tests of agents with a common base do. Runs stay parallel. Other
	// processes sharing the storage can still race; load retries for them.
	storage sync.Mutex
}

// execute runs the engine's CLI with args, behind the prefix if there is one.
func (r *cliRuntime) execute(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	argv := slices.Concat(r.prefix, []string{r.bin}, args)
	var o, e bytes.Buffer
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Stdout, c.Stderr = &o, &e
	err = c.Run()
	return o.String(), e.String(), err
}

func (r *cliRuntime) Name() string { return r.bin }

func (r *cliRuntime) probe() error {
	if _, err := exec.LookPath(r.bin); err != nil {
		return fmt.Errorf("%s is not installed: %w", r.bin, err)
	}
	// Both answer from the engine, not just the client, so a docker CLI
	// without a daemon is caught here rather than at the first load.
	args := []string{"info", "--format", "{{.Host.OCIRuntime.Name}}"}
	if r.bin == "docker" {
		args = []string{"version", "--format", "{{.Server.Version}}"}
	}
	if _, err := r.cmd(context.Background(), args...); err != nil {
		return fmt.Errorf("%s does not work: %w", r.bin, err)
	}
	return nil
}

// cmd runs the engine's CLI and returns stdout; the error carries stderr.
func (r *cliRuntime) cmd(ctx context.Context, args ...string) (string, error) {
	stdout, stderr, err := r.execute(ctx, args...)
	if err != nil {
		return stdout, fmt.Errorf("%s %s: %w: %s", r.bin, strings.Join(args, " "), err, strings.TrimSpace(stderr))
	}
	return stdout, nil
}

func (r *cliRuntime) Load(ctx context.Context, img v1.Image) (string, error) {
	cfgDigest, err := img.ConfigName()
	if err != nil {
		return "", fmt.Errorf("reading image config digest: %w", err)
	}
	manifestDigest, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("reading image digest: %w", err)
	}
	// A tag of its own per run: parallel tests of the same image cannot
	// remove each other's tag, and an image the user loaded keeps its tags.
	tag := cfgDigest.Hex[:12] + "-" + strings.ToLower(rand.Text()[:12])
	var ref string
	if r.pull {
		err = serve(ctx, img, "agent-images-smoke", tag, func(t name.Tag) error {
			ref = t.String()
			return r.load(ctx, "pull", "--tls-verify=false", "--quiet", ref)
		})
	} else {
		ref = "localhost/agent-images-smoke:" + tag
		err = r.loadArchive(ctx, img, ref)
	}
	if err != nil {
		return "", fmt.Errorf("loading image into %s: %w", r.bin, err)
	}
	out, err := r.cmd(ctx, "image", "inspect", "--format", "{{.Id}}", ref)
	if err != nil {
		_ = r.Remove(context.WithoutCancel(ctx), ref)
		return "", fmt.Errorf("inspecting loaded image: %w", err)
	}
	id := strings.TrimPrefix(strings.TrimSpace(out), "sha256:")
	// Classic engines key images by config digest, containerd-backed docker
	// by manifest digest; anything else is not the image we were given.
	if id != cfgDigest.Hex && id != manifestDigest.Hex {
		_ = r.Remove(context.WithoutCancel(ctx), ref)
		return "", fmt.Errorf("%s loaded image %s, want config %s or manifest %s", r.bin, id, cfgDigest, manifestDigest)
	}
	return ref, nil
}

// loadArchive writes img as a docker-archive tagged ref and loads it.
func (r *cliRuntime) loadArchive(ctx context.Context, img v1.Image, ref string) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp("", "agent-images-smoke-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	// The legacy format keeps the layers uncompressed: tarball.Write would
	// gzip every layer only for the engine to inflate it again, which for a
	// real agent image costs more than all the checks. The config bytes are
	// copied as they are, so the engine's image ID is the config digest.
	if err := legacy.Write(tag, img, f); err != nil {
		f.Close()
		return fmt.Errorf("writing docker archive for %s: %w", r.bin, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return r.load(ctx, "load", "-i", f.Name())
}

// loadAttempts bounds how often load retries a lost layer.
const loadAttempts = 3

// load runs `<engine> args` (a load or a pull), holding the storage lock.
// A load that lost a shared layer to another process's `image rm` (see
// storage) fails with "layer not known"; loading again writes the layer.
func (r *cliRuntime) load(ctx context.Context, args ...string) error {
	r.storage.Lock()
	defer r.storage.Unlock()
	var err error
	for range loadAttempts {
		if _, err = r.cmd(ctx, args...); err == nil || !strings.Contains(err.Error(), "layer not known") {
			return err
		}
	}
	return err
}

func (r *cliRuntime) Run(ctx context.Context, spec RunSpec) (*RunResult, error) {
	args := []string{"run", "--rm", "--network", "none", "--pull", "never"}
	switch p := spec.Platform; {
	case p.Architecture == "":
	case r.bin == "podman":
		// podman 4 matches local images by --arch; --platform would make it look for a pull.
		args = append(args, "--arch", p.Architecture)
		if p.Variant != "" {
			args = append(args, "--variant", p.Variant)
		}
	default:
		args = append(args, "--platform", p.String())
	}
	stdout, stderr, err := r.execute(ctx, slices.Concat(args, spec.Flags, []string{spec.Image}, spec.Args)...)
	res := &RunResult{Stdout: stdout, Stderr: stderr}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return res, nil
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%s run %s: %w", r.bin, spec.Image, ctx.Err())
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitCode()
		// 125 is the engine's own failure (bad flag, no such image, runtime
		// error); 126/127 mean the program could not be run, a check failure.
		if res.ExitCode == 125 {
			return nil, fmt.Errorf("%s run %s failed: %s", r.bin, spec.Image, strings.TrimSpace(res.Stderr))
		}
		return res, nil
	default:
		return nil, fmt.Errorf("%s run %s: %w", r.bin, spec.Image, err)
	}
}

func (r *cliRuntime) Remove(ctx context.Context, ref string) error {
	r.storage.Lock()
	defer r.storage.Unlock()
	_, err := r.cmd(ctx, "image", "rm", ref)
	return err
}

// binfmtDir is where the kernel lists binfmt_misc entries; tests point it elsewhere.
var binfmtDir = "/proc/sys/fs/binfmt_misc"

// qemuNames maps GOARCH to the qemu binfmt entry name.
var qemuNames = map[string]string{
	"amd64":   "x86_64",
	"arm64":   "aarch64",
	"arm":     "arm",
	"386":     "i386",
	"ppc64le": "ppc64le",
	"s390x":   "s390x",
	"riscv64": "riscv64",
}

// hostArch is the architecture containers run natively here.
var hostArch = goruntime.GOARCH

// CanRun says whether containers of platform p can run on this host: natively,
// or emulated through a registered and enabled qemu binfmt_misc entry. When
// ok is false, how says why; err is for failures reading the kernel's state.
func CanRun(p v1.Platform) (ok bool, how string, err error) {
	if p.OS != "linux" {
		return false, fmt.Sprintf("%s images cannot run on a linux host", p.OS), nil
	}
	if p.Architecture == hostArch {
		return true, "native", nil
	}
	qemu, known := qemuNames[p.Architecture]
	if !known {
		return false, fmt.Sprintf("no known qemu emulator for %s", p.Architecture), nil
	}
	entry := "qemu-" + qemu
	// binfmt_misc, then the entry in it: each must exist and be enabled.
	var lines []string
	for _, f := range []struct{ file, missing, disabled string }{
		{"status", "binfmt_misc is not mounted at " + binfmtDir, "binfmt_misc is disabled"},
		{entry, "no " + entry + " binfmt entry is registered (scripts/setup-host.sh registers it)", "the " + entry + " binfmt entry is disabled"},
	} {
		b, err := os.ReadFile(filepath.Join(binfmtDir, f.file))
		if errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Sprintf("%s cannot run on %s: %s", p.Architecture, hostArch, f.missing), nil
		}
		if err != nil {
			return false, "", fmt.Errorf("reading binfmt_misc %s: %w", f.file, err)
		}
		if lines = strings.Split(string(b), "\n"); strings.TrimSpace(lines[0]) != "enabled" {
			return false, fmt.Sprintf("%s cannot run on %s: %s", p.Architecture, hostArch, f.disabled), nil
		}
	}
	var interp, flags string
	for _, l := range lines[1:] {
		if v, ok := strings.CutPrefix(l, "interpreter "); ok {
			interp = v
		}
		if v, ok := strings.CutPrefix(l, "flags: "); ok {
			flags = v
		}
	}
	// Without F the kernel looks the interpreter up inside the container's
	// root, where it does not exist.
	if !strings.Contains(flags, "F") {
		return false, fmt.Sprintf("%s cannot run in containers: the %s binfmt entry lacks the F (fix binary) flag", p.Architecture, entry), nil
	}
	return true, fmt.Sprintf("emulated by %s (%s)", entry, interp), nil
}
