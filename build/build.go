// Package build turns release targets into images: it runs nix build for
// each target in parallel and loads what Nix produced (a docker-archive, or
// the script streamLayeredImage makes) as an OCI image whose platform is
// checked against the target's system.
package build

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

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

// Build builds the target of every image record with nix build, at most
// jobs at a time, and fills in each record: DrvPath, OutPath, Image and
// Digest, or the error that failed it, which stays with that record. Records
// that already failed are skipped. Build returns an error only when it
// cannot start (no work directory).
func Build(ctx context.Context, flake nix.Flake, images []*record.Image, opts ...Option) error {
	o := options{jobs: runtime.NumCPU(), nix: nix.Run, progress: func(Event) {}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.jobs < 1 {
		return fmt.Errorf("--jobs %d: want at least 1", o.jobs)
	}
	if o.workDir == "" {
		dir, err := os.MkdirTemp("", "agent-images-build-")
		if err != nil {
			return err
		}
		o.workDir = dir
	}
	if err := os.MkdirAll(o.workDir, 0o755); err != nil {
		return fmt.Errorf("creating work directory %s: %w", o.workDir, err)
	}
	// Every target's layers are compressed once into one store; what an
	// earlier run left there is not trusted, so the store starts empty.
	layers := filepath.Join(o.workDir, "layers")
	if err := os.RemoveAll(layers); err != nil {
		return fmt.Errorf("clearing %s: %w", layers, err)
	}
	store := NewLayerStore(layers)

	var g errgroup.Group
	g.SetLimit(o.jobs)
	for _, img := range images {
		if img.Failed() {
			continue
		}
		g.Go(func() error {
			// Failures stay with their image: one agent failing to build
			// must not stop the others.
			if err := buildOne(ctx, o, store, flake, img); err != nil {
				img.Fail(err)
				o.progress(Event{Image: img, Stage: "failed", Err: err})
			} else {
				o.progress(Event{Image: img, Stage: "built"})
			}
			return nil
		})
	}
	return g.Wait()
}

func buildOne(ctx context.Context, o options, store *LayerStore, flake nix.Flake, img *record.Image) error {
	o.progress(Event{Image: img, Stage: "building"})
	name := img.Agent + "-" + string(img.System)
	attr := fmt.Sprintf("packages.%s.%s", img.System, img.Agent)
	link := filepath.Join(o.workDir, "out", name)
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return err
	}
	// Each target is its own nix process so one failure stays with its
	// target; they must not share the evaluation cache, whose SQLite
	// database Nix does not open safely from several processes at once.
	args := append([]string{"build", "--json", "--no-eval-cache", "--out-link", link, flake.Installable(attr)}, flake.OverrideArgs()...)
	out, err := o.nix(ctx, args...)
	if err != nil {
		return fmt.Errorf("building %s: %w", img, err)
	}
	var built []struct {
		DrvPath string            `json:"drvPath"`
		Outputs map[string]string `json:"outputs"`
	}
	if err := json.Unmarshal(out, &built); err != nil || len(built) != 1 || built[0].Outputs["out"] == "" {
		return fmt.Errorf("building %s: nix build --json printed %q, want one derivation with an out output", img, out)
	}
	img.DrvPath, img.OutPath = built[0].DrvPath, built[0].Outputs["out"]

	o.progress(Event{Image: img, Stage: "loading"})
	archive := filepath.Join(o.workDir, "archives", name+".tar")
	if err := os.MkdirAll(filepath.Dir(archive), 0o755); err != nil {
		return err
	}
	archive, err = Archive(ctx, img.OutPath, archive)
	if err != nil {
		return fmt.Errorf("loading %s from %s: %w", img, img.OutPath, err)
	}
	loaded, err := store.Image(ctx, archive)
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
