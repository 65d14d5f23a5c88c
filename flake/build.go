package flake

import (
	"context"
	"fmt"
	"github.com/nothingnesses/agent-images/internal/safefile"
	"os"
	"path/filepath"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Built is what building one target gave: the Nix store path of the image
// output, and the image read from it through the layer store.
type Built struct {
	OutPath string
	Image   v1.Image
	Digest  v1.Hash
}

// Event reports progress of one target.
type Event struct {
	Target Target
	Stage  string // "building", "loading", "built", "failed"
	Err    error
}

type options struct {
	jobs     int
	workDir  string
	progress func(Event)
	nix      Runner
}

// Option configures a Builder, Build, Load and LoadMissing (which read only
// the nix runner).
type Option func(*options)

// WithJobs limits how many targets build at once (default: the number of CPUs).
func WithJobs(n int) Option { return func(o *options) { o.jobs = n } }

// WithWorkDir sets where out-links, archives and compressed layers are kept
// (default: a temporary directory the caller must remove).
func WithWorkDir(dir string) Option { return func(o *options) { o.workDir = dir } }

// WithProgress receives an Event as each target moves on.
func WithProgress(f func(Event)) Option { return func(o *options) { o.progress = f } }

// withNix swaps the nix runner, for tests.
func withNix(r Runner) Option { return func(o *options) { o.nix = r } }

// Builder realises the derivations of image records and loads what they
// produced. One Builder serves a whole run, so that every image's layers are
// compressed once into one store; Build may be called for many images at once.
type Builder struct {
	o     options
	store *LayerStore

	// The nix on PATH is asked its version once, on the first build: how
	// a derivation's output is named depends on it.
	versionOnce sync.Once
	version     Version
	versionErr  error
}

// NewBuilder prepares the work directory. What an earlier run left in its
// layer store is not trusted, so the store starts empty.
func NewBuilder(opts ...Option) (*Builder, error) {
	o := makeOptions(opts)
	if o.jobs < 1 {
		return nil, fmt.Errorf("jobs %d: want at least 1", o.jobs)
	}
	if o.workDir == "" {
		dir, err := os.MkdirTemp("", "agent-images-build-")
		if err != nil {
			return nil, err
		}
		o.workDir = dir
	}
	for _, dir := range []string{o.workDir, filepath.Join(o.workDir, "layers"), filepath.Join(o.workDir, "archives"), filepath.Join(o.workDir, "out")} {
		if err := safefile.Dir(dir); err != nil {
			return nil, fmt.Errorf("work directory: %w", err)
		}
	}
	layers := filepath.Join(o.workDir, "layers")
	if err := os.RemoveAll(layers); err != nil {
		return nil, fmt.Errorf("clearing %s: %w", layers, err)
	}
	return &Builder{o: o, store: NewLayerStore(layers)}, nil
}

// Build realises t's derivation (t.Image.DrvPath, from the release's one
// evaluation) and reads what Nix produced as an image. A failure is the
// target's alone: Build may run for many targets at once.
func (b *Builder) Build(ctx context.Context, t Target) (*Built, error) {
	out, err := b.build(ctx, t)
	if err != nil {
		b.o.progress(Event{Target: t, Stage: "failed", Err: err})
		return nil, err
	}
	b.o.progress(Event{Target: t, Stage: "built"})
	return out, nil
}

func (b *Builder) build(ctx context.Context, t Target) (*Built, error) {
	o := b.o
	o.progress(Event{Target: t, Stage: "building"})
	if !strings.HasSuffix(t.Image.DrvPath, ".drv") {
		return nil, fmt.Errorf("building %s: no derivation to realise (the release set's evaluation names one for every target)", t)
	}
	name := t.Agent + "-" + string(t.System)
	link := filepath.Join(o.workDir, "out", name)
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return nil, err
	}
	b.versionOnce.Do(func() { b.version, b.versionErr = DetectVersion(ctx, o.nix) })
	if b.versionErr != nil {
		return nil, fmt.Errorf("building %s: %w", t, b.versionErr)
	}
	// Realising a derivation evaluates nothing, so each target can be its
	// own process, which keeps a failure with its target, at the cost of a
	// process start.
	out, err := Realise(ctx, o.nix, b.version, t.Image.DrvPath, link)
	if err != nil {
		return nil, fmt.Errorf("building %s: %w", t, err)
	}

	o.progress(Event{Target: t, Stage: "loading"})
	archive := filepath.Join(o.workDir, "archives", name+".tar")
	if err := os.MkdirAll(filepath.Dir(archive), 0o755); err != nil {
		return nil, err
	}
	archive, err = Archive(ctx, out, archive)
	if err != nil {
		return nil, fmt.Errorf("loading %s from %s: %w", t, out, err)
	}
	loaded, err := b.store.Image(ctx, archive)
	if err != nil {
		return nil, fmt.Errorf("loading %s from %s: %w", t, out, err)
	}
	if err := CheckPlatform(loaded, t.System); err != nil {
		return nil, fmt.Errorf("image for %s built from %s: %w", t, out, err)
	}
	d, err := loaded.Digest()
	if err != nil {
		return nil, fmt.Errorf("loading %s from %s: %w", t, out, err)
	}
	return &Built{OutPath: out, Image: loaded, Digest: d}, nil
}
