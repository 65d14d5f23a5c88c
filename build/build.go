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

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/nothingnesses/agent-images/internal/nix"
	"github.com/nothingnesses/agent-images/matrix"
)

// Result is what building one target produced. Err is set when this target
// failed; the others are unaffected.
type Result struct {
	Target matrix.Target
	// OutPath is the Nix store path of the image output.
	OutPath string
	// DrvPath is the derivation that built it.
	DrvPath string
	// Archive is the uncompressed docker-archive the image is read from.
	Archive string
	Image   v1.Image
	Err     error
}

// Event reports progress of one target.
type Event struct {
	Target matrix.Target
	Stage  string // "building", "loading", "built", "failed"
	Err    error
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

// Build builds every target with nix build, at most jobs at a time, and
// returns one Result per target in the order given. It returns an error only
// when it cannot start (no work directory); a target that fails carries its
// error in its Result.
func Build(ctx context.Context, flake nix.Flake, targets []matrix.Target, opts ...Option) ([]Result, error) {
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
	// Every target's layers are compressed once into one store; what an
	// earlier run left there is not trusted, so the store starts empty.
	layers := filepath.Join(o.workDir, "layers")
	if err := os.RemoveAll(layers); err != nil {
		return nil, fmt.Errorf("clearing %s: %w", layers, err)
	}
	store := NewLayerStore(layers)

	results := make([]Result, len(targets))
	var g errgroup.Group
	g.SetLimit(o.jobs)
	for i, t := range targets {
		g.Go(func() error {
			results[i] = buildOne(ctx, o, store, flake, t)
			if results[i].Err != nil {
				o.progress(Event{Target: t, Stage: "failed", Err: results[i].Err})
			} else {
				o.progress(Event{Target: t, Stage: "built"})
			}
			// Failures stay with their target: one agent failing to build
			// must not stop the others.
			return nil
		})
	}
	_ = g.Wait()
	return results, nil
}

func buildOne(ctx context.Context, o options, store *LayerStore, flake nix.Flake, t matrix.Target) Result {
	r := Result{Target: t}
	o.progress(Event{Target: t, Stage: "building"})
	attr := fmt.Sprintf("packages.%s.%s", t.System, t.Agent)
	link := filepath.Join(o.workDir, "out", t.Agent+"-"+string(t.System))
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		r.Err = err
		return r
	}
	// Each target is its own nix process so one failure stays with its
	// target; they must not share the evaluation cache, whose SQLite
	// database Nix does not open safely from several processes at once.
	args := append([]string{"build", "--json", "--no-eval-cache", "--out-link", link, flake.Installable(attr)}, flake.OverrideArgs()...)
	out, err := o.nix(ctx, args...)
	if err != nil {
		r.Err = fmt.Errorf("building %s: %w", t, err)
		return r
	}
	var built []struct {
		DrvPath string            `json:"drvPath"`
		Outputs map[string]string `json:"outputs"`
	}
	if err := json.Unmarshal(out, &built); err != nil || len(built) != 1 || built[0].Outputs["out"] == "" {
		r.Err = fmt.Errorf("building %s: nix build --json printed %q, want one derivation with an out output", t, out)
		return r
	}
	r.DrvPath, r.OutPath = built[0].DrvPath, built[0].Outputs["out"]

	o.progress(Event{Target: t, Stage: "loading"})
	archive := filepath.Join(o.workDir, "archives", t.Agent+"-"+string(t.System)+".tar")
	if err := os.MkdirAll(filepath.Dir(archive), 0o755); err != nil {
		r.Err = err
		return r
	}
	r.Archive, err = Archive(ctx, r.OutPath, archive)
	if err != nil {
		r.Err = fmt.Errorf("loading %s from %s: %w", t, r.OutPath, err)
		return r
	}
	img, err := store.Image(ctx, r.Archive)
	if err != nil {
		r.Err = fmt.Errorf("loading %s from %s: %w", t, r.OutPath, err)
		return r
	}
	if err := CheckPlatform(img, t.System); err != nil {
		r.Err = fmt.Errorf("image for %s built from %s: %w", t, r.OutPath, err)
		return r
	}
	r.Image = img
	return r
}
