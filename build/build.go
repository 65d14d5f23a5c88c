// Package build turns release targets into images: it realises each
// target's derivation, as the release's one evaluation named it, in
// parallel and loads what Nix produced (a docker-archive, or
// the script streamLayeredImage makes) as an OCI image whose platform is
// checked against the target's system.
package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/nothingnesses/agent-images/internal/nix"
	"github.com/nothingnesses/agent-images/record"
)

// Event reports progress of one image.
type Event struct {
	Image *record.Image
	Stage string // "building", "loading", "built", "failed"
	Err   error
}

type options struct {
	jobs     int
	workDir  string
	progress func(Event)
	nix      nix.Runner
}

// Option configures Build.
type Option func(*options)

// WithJobs limits how many targets build at once (default: the number of CPUs).
func WithJobs(n int) Option { return func(o *options) { o.jobs = n } }

// WithWorkDir sets where out-links, archives and compressed layers are kept
// (default: a temporary directory the caller must remove).
func WithWorkDir(dir string) Option { return func(o *options) { o.workDir = dir } }

// WithProgress receives an Event as each target moves on.
func WithProgress(f func(Event)) Option { return func(o *options) { o.progress = f } }

// withNix swaps the nix runner, for tests.
func withNix(r nix.Runner) Option { return func(o *options) { o.nix = r } }

// Builder realises the derivations of image records and loads what they
// produced. One Builder serves a whole run, so that every image's layers are
// compressed once into one store; Build may be called for many images at once.
type Builder struct {
	o     options
	store *LayerStore

	// The nix on PATH is asked its version once, on the first build: how
	// a derivation's output is named depends on it.
	versionOnce sync.Once
	version     nix.Version
	versionErr  error
}

// NewBuilder prepares the work directory. What an earlier run left in its
// layer store is not trusted, so the store starts empty.
func NewBuilder(opts ...Option) (*Builder, error) {
	o := options{jobs: runtime.NumCPU(), nix: nix.Run, progress: func(Event) {}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.jobs < 1 {
		return nil, fmt.Errorf("--jobs %d: want at least 1", o.jobs)
	}
	if o.workDir == "" {
		dir, err := os.MkdirTemp("", "agent-images-build-")
		if err != nil {
			return nil, err
		}
		o.workDir = dir
	}
	if err := os.MkdirAll(o.workDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating work directory %s: %w", o.workDir, err)
	}
	layers := filepath.Join(o.workDir, "layers")
	if err := os.RemoveAll(layers); err != nil {
		return nil, fmt.Errorf("clearing %s: %w", layers, err)
	}
	return &Builder{o: o, store: NewLayerStore(layers)}, nil
}

// Build realises img's derivation (img.DrvPath, from the release's one
// evaluation) and fills in OutPath, Image and Digest, or fails img with the
// reason, which stays with that record. It returns nothing: a failure is
// the image's, never the run's.
func (b *Builder) Build(ctx context.Context, img *record.Image) {
	if img.Failed() {
		return
	}
	if err := b.buildOne(ctx, img); err != nil {
		img.Fail(err)
		b.o.progress(Event{Image: img, Stage: "failed", Err: err})
		return
	}
	b.o.progress(Event{Image: img, Stage: "built"})
}

// Build builds every image record with one Builder, at most jobs at a time.
// Records that already failed are skipped. It returns an error only when it
// cannot start (no work directory).
func Build(ctx context.Context, images []*record.Image, opts ...Option) error {
	b, err := NewBuilder(opts...)
	if err != nil {
		return err
	}
	var g errgroup.Group
	g.SetLimit(b.o.jobs)
	for _, img := range images {
		g.Go(func() error { b.Build(ctx, img); return nil })
	}
	return g.Wait()
}

func (b *Builder) buildOne(ctx context.Context, img *record.Image) error {
	o := b.o
	o.progress(Event{Image: img, Stage: "building"})
	if !strings.HasSuffix(img.DrvPath, ".drv") {
		return fmt.Errorf("building %s: no derivation to realise (the release set's evaluation names one for every target)", img)
	}
	name := img.Agent + "-" + string(img.System)
	link := filepath.Join(o.workDir, "out", name)
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return err
	}
	b.versionOnce.Do(func() { b.version, b.versionErr = nix.DetectVersion(ctx, o.nix) })
	if b.versionErr != nil {
		return fmt.Errorf("building %s: %w", img, b.versionErr)
	}
	// Realising a derivation evaluates nothing, so each target can be its
	// own process, which keeps a failure with its target, at the cost of a
	// process start.
	out, err := nix.Realise(ctx, o.nix, b.version, img.DrvPath, link)
	if err != nil {
		return fmt.Errorf("building %s: %w", img, err)
	}
	img.OutPath = out

	o.progress(Event{Image: img, Stage: "loading"})
	archive := filepath.Join(o.workDir, "archives", name+".tar")
	if err := os.MkdirAll(filepath.Dir(archive), 0o755); err != nil {
		return err
	}
	archive, err = Archive(ctx, img.OutPath, archive)
	if err != nil {
		return fmt.Errorf("loading %s from %s: %w", img, img.OutPath, err)
	}
	loaded, err := b.store.Image(ctx, archive)
	if err != nil {
		return fmt.Errorf("loading %s from %s: %w", img, img.OutPath, err)
	}
	if err := CheckPlatform(loaded, img.System); err != nil {
		return fmt.Errorf("image for %s built from %s: %w", img, img.OutPath, err)
	}
	if img.Digest, err = loaded.Digest(); err != nil {
		return fmt.Errorf("loading %s from %s: %w", img, img.OutPath, err)
	}
	img.Image = loaded
	return nil
}
