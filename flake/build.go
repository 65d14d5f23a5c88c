package flake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/nothingnesses/agent-images/internal/safefile"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Built is what building one target gave: the Nix store path realised for
// it (the image archive, or the conf.json it was packed from), and the
// image.
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
	jobs        int
	workDir     string
	cacheDir    string
	compression Compression
	progress    func(Event)
	nix         Runner
}

// Option configures a Builder, Build, Load and LoadMissing (which read only
// the nix runner).
type Option func(*options)

// WithJobs limits how many targets build, and how many layers are packed,
// at once (default: the number of CPUs).
func WithJobs(n int) Option { return func(o *options) { o.jobs = n } }

// WithWorkDir sets where out-links and archives are kept (default: a
// temporary directory the caller must remove).
func WithWorkDir(dir string) Option { return func(o *options) { o.workDir = dir } }

// WithCacheDir sets where packed layers are kept between runs (default:
// DefaultCacheDir).
func WithCacheDir(dir string) Option { return func(o *options) { o.cacheDir = dir } }

// WithCompression sets how layers are compressed (default: Gzip).
func WithCompression(c Compression) Option { return func(o *options) { o.compression = c } }

// WithProgress receives an Event as each target moves on.
func WithProgress(f func(Event)) Option { return func(o *options) { o.progress = f } }

// Builder realises the derivations of image records and makes images of
// what they produced. One Builder serves a whole run, and its layer cache
// outlives it: every store path is packed and compressed once, ever. Build
// may be called for many images at once.
type Builder struct {
	o     options
	cache *layerCache

	// How a derivation's output is named depends on the version of nix.
	versionOnce sync.Once
	version     Version
	versionErr  error
	// held are the conf.json outputs RealiseHeld realised, by derivation,
	// before any Build.
	held map[string]string
}

// NewBuilder prepares the work directory and the layer cache.
func NewBuilder(opts ...Option) (*Builder, error) {
	o := makeOptions(opts)
	if o.jobs < 1 {
		return nil, fmt.Errorf("jobs %d: want at least 1", o.jobs)
	}
	if _, err := ParseCompression(string(o.compression)); err != nil {
		return nil, err
	}
	if o.workDir == "" {
		dir, err := os.MkdirTemp("", "agent-images-build-")
		if err != nil {
			return nil, err
		}
		o.workDir = dir
	}
	for _, dir := range []string{o.workDir, filepath.Join(o.workDir, "archives"), filepath.Join(o.workDir, "out")} {
		if err := safefile.Dir(dir); err != nil {
			return nil, fmt.Errorf("work directory: %w", err)
		}
	}
	if o.cacheDir == "" {
		dir, err := DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		o.cacheDir = dir
	}
	cache, err := newLayerCache(o.cacheDir, o.compression, o.jobs)
	if err != nil {
		return nil, err
	}
	return &Builder{o: o, cache: cache}, nil
}

// Build realises what t's image is made of and makes the image. When the
// release's one evaluation named the image's conf.json derivation, Build
// realises that (which brings every store path of the image) and packs the
// image from the store as dockerTools would; otherwise, or when the conf
// asks for what the packer does not reproduce, it realises the image
// derivation (t.Image.DrvPath) and reads the archive Nix made. A failure
// is the target's alone: Build may run for many targets at once.
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
	if err := b.detectVersion(ctx); err != nil {
		return nil, fmt.Errorf("building %s: %w", t, err)
	}
	name := t.Agent + "-" + string(t.System)
	if t.Image.ConfDrvPath != "" {
		built, err := b.pack(ctx, t, name)
		if !errors.Is(err, errNotPackable) {
			return built, err
		}
	}
	// Realising a derivation evaluates nothing, so each target can be its
	// own process, which keeps a failure with its target, at the cost of a
	// process start.
	outs, err := Realise(ctx, o.nix, b.version, filepath.Join(o.workDir, "out", name), t.Image.DrvPath)
	if err != nil {
		return nil, fmt.Errorf("building %s: %w", t, err)
	}
	out := outs[t.Image.DrvPath]
	o.progress(Event{Target: t, Stage: "loading"})
	archive, err := Archive(ctx, out, filepath.Join(o.workDir, "archives", name+".tar"))
	if err != nil {
		return nil, fmt.Errorf("loading %s from %s: %w", t, out, err)
	}
	loaded, err := b.cache.archiveImage(ctx, archive)
	if err != nil {
		return nil, fmt.Errorf("loading %s from %s: %w", t, out, err)
	}
	return built(t, out, loaded)
}

// pack realises t's conf.json and packs the image from it: errNotPackable
// when the conf asks for what the packer does not reproduce. conf.json
// names, so refers to, every store path of the image: Nix keeps them all
// in the store with it, however it got it.
func (b *Builder) pack(ctx context.Context, t Target, name string) (*Built, error) {
	conf := b.held[t.Image.ConfDrvPath]
	if conf == "" {
		outs, err := Realise(ctx, b.o.nix, b.version, filepath.Join(b.o.workDir, "out", "conf", name), t.Image.ConfDrvPath)
		if err != nil {
			return nil, fmt.Errorf("building %s: %w", t, err)
		}
		conf = outs[t.Image.ConfDrvPath]
	}
	c, own, err := readConf(conf)
	if err != nil {
		return nil, fmt.Errorf("building %s from %s: %w", t, conf, err)
	}
	b.o.progress(Event{Target: t, Stage: "loading"})
	img, err := b.packImage(ctx, c, own)
	if err != nil {
		return nil, fmt.Errorf("packing %s from %s: %w", t, conf, err)
	}
	return built(t, conf, img)
}

// RealiseHeld realises, in one nix process, the conf.json of each of
// targets that the store already holds (a push of built images, a release
// after another), so that Build of them starts no process: starting nix
// costs more than finding an output valid. A conf.json that must be built
// is still realised by Build, a process per target, which keeps a failure
// with its target and lets Nix build while others pack. Call it before
// Build; when it fails, Build realises each target as before.
func (b *Builder) RealiseHeld(ctx context.Context, targets []Target) {
	var drvs []string
	for _, t := range targets {
		// A path in the store is only a hint: nix checks it is valid, and
		// builds it otherwise.
		if _, err := os.Lstat(drvOutput(t.Image.ConfDrvPath)); err == nil && !slices.Contains(drvs, t.Image.ConfDrvPath) {
			drvs = append(drvs, t.Image.ConfDrvPath)
		}
	}
	if len(drvs) > 0 && b.detectVersion(ctx) == nil {
		// The out-links out/held/conf, conf-1, ... keep what is packed
		// from being collected, as a target's own link does. They have a
		// directory of their own so that an earlier run's, which would
		// keep its closures alive, go first without touching any other
		// link. On failure held is nil.
		dir := filepath.Join(b.o.workDir, "out", "held")
		os.RemoveAll(dir)
		b.held, _ = Realise(ctx, b.o.nix, b.version, filepath.Join(dir, "conf"), drvs...)
	}
}

// drvOutput is the out path a store derivation's file names first, as in
// Derive([("out","/nix/store/…-conf.json","",""), …; "" when it names
// none there, as a content-addressed derivation does.
func drvOutput(drvPath string) string {
	data, err := os.ReadFile(drvPath)
	rest, ok := bytes.CutPrefix(data, []byte(`Derive([("out","`))
	out, _, found := bytes.Cut(rest, []byte(`"`))
	if err != nil || !ok || !found || filepath.Dir(string(out)) != filepath.Dir(drvPath) {
		return ""
	}
	return string(out)
}

// detectVersion asks the nix on PATH its version once, on the first build.
func (b *Builder) detectVersion(ctx context.Context) error {
	b.versionOnce.Do(func() { b.version, b.versionErr = DetectVersion(ctx, b.o.nix) })
	return b.versionErr
}

func built(t Target, out string, img v1.Image) (*Built, error) {
	if err := CheckPlatform(img, t.System); err != nil {
		return nil, fmt.Errorf("image for %s built from %s: %w", t, out, err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("loading %s from %s: %w", t, out, err)
	}
	return &Built{OutPath: out, Image: img, Digest: d}, nil
}
