// Command bench measures a release of the benchmark image set on this
// machine and prints one table: a cold release, pushes of the built images
// to empty registries with an empty layer cache (gzip and zstd), a second
// cold release with the layer cache warm, the reruns a nightly meets (same
// commit, new commit, one agent changed), a baseline of skopeo and podman
// over docker-archives of the same images, and the physical limits
// measured here, then says which of issue 20's targets are met.
// scripts/bench.sh runs it; docs/benchmark.md says what each figure means.
//
// It builds the release tool, copies testdata/bench (the benchmark's
// stand-in inputs) with the chosen scale and a fresh seed, so every image
// is built from scratch, starts Debian's docker-registry behind recording
// proxies, and runs `release` as a child process, timing it and sampling
// its peak RSS. A nix wrapper first on PATH counts nix runs.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/testbed/regproxy"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

type config struct {
	scale   float64
	agents  string
	systems string
	runtime string
	key     bool
	changed string
	seed    string
	work    string
	keep    bool
	jobs    int
	release string
	// rssOnly runs only the cold release and the zstd push, for peak RSS
	// at a scale the whole bench has no disk for.
	rssOnly bool
	// registryStorage is where the registries keep what release pushes:
	// memory, disk or auto.
	registryStorage string
}

func main() {
	// The recording proxy runs in this process and its heap is small: at
	// Go's default it would collect after every few requests it records.
	debug.SetGCPercent(400)
	var c config
	flag.Float64Var(&c.scale, "scale", 0.05, "size of the image set: 1.0 is the full estimate of testdata/bench/sizes.json")
	flag.StringVar(&c.agents, "agents", "all", "agents to release, comma-separated, or all")
	flag.StringVar(&c.systems, "systems", "", "systems to release, comma-separated (default: both)")
	flag.StringVar(&c.runtime, "runtime", "none", "release --runtime: none (static checks only), podman or docker")
	flag.BoolVar(&c.key, "key", false, "sign with a key made by release keygen (default: --sign=false)")
	flag.StringVar(&c.changed, "changed", "pi", "the agent whose images change in the one-agent-changed run")
	flag.StringVar(&c.seed, "seed", "", "payload seed (default: a fresh one, so nothing is built yet)")
	flag.StringVar(&c.work, "work", "", "work directory (default: a new temporary directory)")
	flag.BoolVar(&c.keep, "keep", false, "keep the work directory (archives, layer caches, registries on disk, logs)")
	flag.IntVar(&c.jobs, "jobs", 0, "release --jobs (default: release's own, the number of CPUs)")
	flag.StringVar(&c.release, "release", "", "release binary to measure (default: built from this checkout)")
	flag.StringVar(&c.registryStorage, "registry-storage", "auto", "where the test bed's registries store blobs: memory (a tmpfs, /dev/shm), disk (the work directory), or auto (memory when /dev/shm has twice the room they need)")
	flag.BoolVar(&c.rssOnly, "rss-only", false, "run only the cold release and the zstd push, for peak RSS at scale 1.0 (no baseline, archives or limits: far less disk)")
	flag.Parse()
	if err := run(context.Background(), c); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	if c.scale <= 0 {
		return fmt.Errorf("-scale %g: want a positive factor, 1.0 for the full estimate", c.scale)
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "testdata", "bench", "nixpkgs", "bench.json")); err != nil {
		return fmt.Errorf("run from the repository root (scripts/bench.sh does): %w", err)
	}
	for _, tool := range []string{"nix", "docker-registry", "skopeo", "podman", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (run scripts/setup-host.sh)", tool)
		}
	}
	if !slices.Contains([]string{"auto", "memory", "disk"}, c.registryStorage) {
		return fmt.Errorf("-registry-storage %q: want memory, disk or auto", c.registryStorage)
	}
	if c.agents != "all" && !slices.Contains(strings.Split(c.agents, ","), c.changed) {
		return fmt.Errorf("-changed %s is not among -agents %s: the last rerun would change nothing", c.changed, c.agents)
	}
	if c.seed == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		c.seed = "bench-" + hex.EncodeToString(b)
	}
	if c.work == "" {
		if c.work, err = os.MkdirTemp("", "agent-images-bench-"); err != nil {
			return err
		}
	}
	if !c.keep {
		defer os.RemoveAll(c.work)
	}
	b := &bench{config: c, root: root, start: time.Now()}
	progress("work directory %s, seed %s, scale %g", c.work, c.seed, c.scale)
	if err := b.prepare(ctx); err != nil {
		return err
	}
	defer b.stop()
	if err := b.measure(ctx); err != nil {
		return err
	}
	b.print(os.Stdout)
	return nil
}

// bench is one benchmark run: its inputs, registries and results.
type bench struct {
	config
	root  string
	start time.Time

	inputs string // copies of testdata/bench
	// registryRoot holds the registries' storage; inMemory says it is a
	// tmpfs.
	registryRoot string
	inMemory     bool
	bin          string // the nix wrapper
	nixLog       string
	release      string
	env          []string

	registries []*testenv.Registry
	servers    []*httptest.Server
	// archives are the images as Nix builds them, for the baseline and
	// the limits.
	archives []archive

	rows        []row
	runsStarted []string
	limits      limits
}

// slug numbers a run for its log files and announces it.
func (b *bench) slug(name string) string {
	b.runsStarted = append(b.runsStarted, name)
	progress("%s", name)
	return fmt.Sprintf("%02d", len(b.runsStarted))
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// prepare copies the inputs, builds release and writes the nix wrapper.
func (b *bench) prepare(ctx context.Context) error {
	b.inputs = filepath.Join(b.work, "inputs")
	if err := copyInputs(ctx, b.root, b.inputs, b.scale, b.seed); err != nil {
		return err
	}
	if err := b.placeRegistries(); err != nil {
		return err
	}

	b.release = b.config.release
	if b.release == "" {
		b.release = filepath.Join(b.work, "release")
		progress("building release")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", b.release, "./cmd/release")
		cmd.Dir = b.root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building release: %w: %s", err, out)
		}
	}

	realNix, err := exec.LookPath("nix")
	if err != nil {
		return err
	}
	b.bin = filepath.Join(b.work, "bin")
	b.nixLog = filepath.Join(b.work, "nix-calls.log")
	if err := os.MkdirAll(b.bin, 0o755); err != nil {
		return err
	}
	wrapper := fmt.Sprintf("#!/bin/sh\necho \"$1\" >> %s\nexec %s \"$@\"\n", b.nixLog, realNix)
	if err := os.WriteFile(filepath.Join(b.bin, "nix"), []byte(wrapper), 0o755); err != nil {
		return err
	}
	b.env = append(os.Environ(), "PATH="+b.bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	if b.key {
		b.env = append(b.env, "COSIGN_PASSWORD=bench")
		cmd := exec.CommandContext(ctx, b.release, "keygen", "--prefix", filepath.Join(b.work, "cosign"))
		cmd.Env = b.env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("release keygen: %w: %s", err, out)
		}
	}
	return nil
}

// copyInputs copies testdata/bench's two flakes into dir (with the links to
// the test stand-ins followed: a path: flake input must hold real files) and
// sets their scale and seed.
func copyInputs(ctx context.Context, root, dir string, scale float64, seed string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, flake := range []string{"nixpkgs", "llm-agents"} {
		cmd := exec.CommandContext(ctx, "cp", "-rL", filepath.Join(root, "testdata", "bench", flake), dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("copying testdata/bench/%s: %w: %s", flake, err, out)
		}
	}
	return writeJSON(filepath.Join(dir, "nixpkgs", "bench.json"), map[string]any{"scale": scale, "seed": seed})
}

// revise sets which agents get new payloads, as a new version would.
func (b *bench) revise(agents []string) error { return revise(b.inputs, agents) }

func revise(inputs string, agents []string) error {
	revisions := map[string]int{}
	for _, a := range agents {
		revisions[a] = 1
	}
	return writeJSON(filepath.Join(inputs, "llm-agents", "bench.json"), map[string]any{"revisions": revisions})
}

// registry is a fresh docker-registry behind a recording proxy.
type registry struct {
	*testenv.Registry
	proxy *regproxy.Proxy
	host  string // the proxy's host:port, where release pushes
}

// placeRegistries decides where the registries store blobs. On disk, each
// of a push's thousands of mounts and uploads writes small files through the
// filesystem's journal, which on this test bed cost the registry nearly
// twice the CPU per mount that a tmpfs does; GHCR's storage is not ours to
// measure, so the bench keeps it in memory when there is room: about 4 GB
// a registry at scale 1.0, twice that free.
func (b *bench) placeRegistries() error {
	registries := 5.0
	if b.rssOnly {
		registries = 2
	}
	need := uint64(registries * b.scale * 4e9)
	b.registryRoot = b.work
	if b.registryStorage == "disk" {
		return nil
	}
	var st syscall.Statfs_t
	err := syscall.Statfs("/dev/shm", &st)
	free := st.Bavail * uint64(st.Bsize)
	if err == nil && free >= 2*need {
		if b.registryRoot, err = os.MkdirTemp("/dev/shm", "agent-images-bench-"); err != nil {
			return err
		}
		b.inMemory = true
		return nil
	}
	if b.registryStorage == "memory" {
		return fmt.Errorf("-registry-storage memory: /dev/shm has %d MB free, the registries need about %d MB at scale %g; use -registry-storage disk", free>>20, need>>20, b.scale)
	}
	return nil
}

func (b *bench) startRegistry(label string) (*registry, error) {
	dir := filepath.Join(b.registryRoot, "registry-"+label)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	reg, err := testenv.RunRegistry(dir)
	if err != nil {
		return nil, err
	}
	b.registries = append(b.registries, reg)
	u, _ := url.Parse("http://" + reg.Addr)
	p := regproxy.To(u)
	srv := httptest.NewServer(p)
	b.servers = append(b.servers, srv)
	return &registry{Registry: reg, proxy: p, host: strings.TrimPrefix(srv.URL, "http://")}, nil
}

// bedCPU is the CPU time the test bed's registry and its recording proxy
// (this process) used during a run.
type bedCPU struct{ registry, proxy time.Duration }

func (c bedCPU) total() time.Duration { return c.registry + c.proxy }

// measureBed starts counting the CPU time the registry and its proxy use; the
// function it returns is what they used since. A reading that fails counts
// as nothing: the figure is an aside, the run's own figures stand.
func (r *registry) measureBed() func() bedCPU {
	read := func() bedCPU {
		reg, _ := r.CPU()
		proxy, _ := testenv.ProcessCPU(os.Getpid())
		return bedCPU{reg, proxy}
	}
	start := read()
	return func() bedCPU {
		now := read()
		return bedCPU{now.registry - start.registry, now.proxy - start.proxy}
	}
}

func (b *bench) stop() {
	for _, s := range b.servers {
		s.Close()
	}
	for _, r := range b.registries {
		r.Stop()
	}
	// A tmpfs holds memory until its files go, whatever -keep says.
	if b.inMemory {
		_ = os.RemoveAll(b.registryRoot)
	}
}

// The runs the targets name.
const (
	coldRun     = "cold release (builds everything, empty layer cache)"
	pushRun     = "push of the built images, empty layer cache"
	warmRun     = "second cold release, warm layer cache (nothing to pack)"
	baselineRun = "baseline: skopeo copy loop + podman manifest lists"
)

// measure runs every scenario in an order that leaves each one the state it
// needs, and the limits. Each registry starts empty; each layer cache is
// named by the runs that share it.
func (b *bench) measure(ctx context.Context) error {
	if b.rssOnly {
		return b.measureRSS(ctx)
	}
	regs := map[string]*registry{}
	for _, label := range []string{"main", "push", "zstd", "warm", "baseline"} {
		reg, err := b.startRegistry(label)
		if err != nil {
			return err
		}
		regs[label] = reg
	}
	cold, err := b.releaseRun(ctx, coldRun, regs["main"], "main", commitFor(1))
	if err != nil {
		return err
	}
	if err := b.buildArchives(ctx, cold.report); err != nil {
		return err
	}
	unique, err := uniqueLayers(b.archives)
	if err != nil {
		return err
	}
	b.limits.images, b.limits.layers, b.limits.uncompressed = len(b.archives), unique.layers, unique.bytes

	push, err := b.releaseRun(ctx, pushRun, regs["push"], "push", commitFor(1))
	if err != nil {
		return err
	}
	t := machineCPU()
	if b.limits.throughput, err = loopbackThroughput(ctx, regs["push"].Addr); err != nil {
		return err
	}
	b.limits.throughputBusy = t.busySince()
	t = machineCPU()
	if b.limits.mounts, b.limits.mountTime, err = mountLimit(ctx, regs["push"].Addr, regs["push"].proxy.Requests()); err != nil {
		return err
	}
	b.limits.mountBusy = t.busySince()
	zstd, err := b.releaseRun(ctx, pushRun+", --compression zstd", regs["zstd"], "zstd", commitFor(1), "--compression", "zstd")
	if err != nil {
		return err
	}
	warm, err := b.releaseRun(ctx, warmRun, regs["warm"], "main", commitFor(1))
	if err != nil {
		return err
	}
	baseline, err := b.baseline(ctx, regs["baseline"])
	if err != nil {
		return err
	}
	for _, c := range []struct {
		compression flake.Compression
		push        row
		reg         *registry
	}{{flake.Gzip, push, regs["push"]}, {flake.Zstd, zstd, regs["zstd"]}} {
		t := machineCPU()
		speed, err := compressSpeed(b.archives, c.compression, c.reg.Storage)
		if err != nil {
			return err
		}
		b.limits.compress = append(b.limits.compress, compressLimit{compression: c.compression, push: c.push, speed: speed, busy: t.busySince()})
	}

	same, err := b.releaseRun(ctx, "rerun, same commit", regs["main"], "main", commitFor(1))
	if err != nil {
		return err
	}
	newCommit, err := b.releaseRun(ctx, "rerun, new commit, images unchanged", regs["main"], "main", commitFor(2))
	if err != nil {
		return err
	}
	if err := b.revise([]string{b.changed}); err != nil {
		return err
	}
	changed, err := b.releaseRun(ctx, "rerun, new commit, "+b.changed+" changed", regs["main"], "main", commitFor(3))
	if err != nil {
		return err
	}
	b.rows = []row{cold, push, zstd, warm, same, newCommit, changed, baseline}
	return nil
}

// measureRSS runs the releases whose peak RSS is highest at small scale,
// the cold release (gzip) and a push with zstd, each into its own registry
// with its own layer cache.
func (b *bench) measureRSS(ctx context.Context) error {
	for _, r := range []struct {
		name, label string
		extra       []string
	}{{coldRun, "main", nil}, {pushRun + ", --compression zstd", "zstd", []string{"--compression", "zstd"}}} {
		reg, err := b.startRegistry(r.label)
		if err != nil {
			return err
		}
		row, err := b.releaseRun(ctx, r.name, reg, r.label, commitFor(1), r.extra...)
		if err != nil {
			return err
		}
		b.rows = append(b.rows, row)
	}
	return nil
}

// commitFor is the n-th made-up commit the runs release.
func commitFor(n int) string { return fmt.Sprintf("%040x", 0xbe0c4000+n) }

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// lastLines is the end of a log, for an error message.
func lastLines(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var cores = runtime.NumCPU()
