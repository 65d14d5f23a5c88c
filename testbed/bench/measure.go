package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/testbed/regproxy"
)

// row is one measured run.
type row struct {
	name string
	wall time.Duration
	// cpu is user + system time of the process and every child it waited for.
	cpu time.Duration
	// peakRSS is the largest resident set of release itself (of any one
	// process, for the baseline), in bytes.
	peakRSS int64
	// busy is the share of the whole machine's CPU time that any process
	// used during the run: on a shared machine, what others took.
	busy float64
	// bed is the CPU time the test bed's registry and its recording proxy
	// (this process) used during the run: on the same cores as release,
	// where a release to GHCR has none of it.
	bed bedCPU
	// nix counts nix runs by subcommand.
	nix      map[string]int
	requests regproxy.Summary
	// stored is the blob bytes the registry gained.
	stored int64
	// agents sums release.json's statuses, e.g. "30 done"; report is
	// release.json's path.
	agents, report string
}

// measurement is what running one process cost.
type measurement struct {
	wall    time.Duration
	cpu     time.Duration
	peakRSS int64
	busy    float64
}

// runMeasured runs cmd and samples the peak resident set of that process
// (VmHWM) until it exits. The kernel's own maximum (rusage) would include
// the nix processes release waits for; the sample is release's alone.
func runMeasured(cmd *exec.Cmd) (measurement, error) {
	start, startCPU := time.Now(), machineCPU()
	if err := cmd.Start(); err != nil {
		return measurement{}, err
	}
	stop := make(chan struct{})
	sampled := make(chan int64)
	go func() {
		var peak int64
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if v := vmHWM(cmd.Process.Pid); v > peak {
				peak = v
			}
			select {
			case <-stop:
				sampled <- peak
				return
			case <-tick.C:
			}
		}
	}()
	err := cmd.Wait()
	close(stop)
	m := measurement{wall: time.Since(start), peakRSS: <-sampled, busy: startCPU.busySince()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		if m.peakRSS == 0 {
			m.peakRSS = ru.Maxrss * 1024
		}
	}
	return m, err
}

// cpuTimes are the machine's CPU times so far, from /proc/stat, in ticks.
type cpuTimes struct{ busy, total int64 }

func machineCPU() cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	var t cpuTimes
	// "cpu  user nice system idle iowait irq softirq steal ..."
	for i, f := range strings.Fields(strings.SplitN(string(b), "\n", 2)[0])[1:] {
		n, _ := strconv.ParseInt(f, 10, 64)
		t.total += n
		if i != 3 && i != 4 {
			t.busy += n
		}
	}
	return t
}

// busySince is the share of CPU time the machine spent busy since t.
func (t cpuTimes) busySince() float64 {
	now := machineCPU()
	if now.total == t.total {
		return 0
	}
	return float64(now.busy-t.busy) / float64(now.total-t.total)
}

// vmHWM is the peak resident set of pid in bytes, 0 once it has exited.
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// releaseRun runs release once against reg, through its proxy, with the
// layer cache named cache and extra flags, and measures it.
func (b *bench) releaseRun(ctx context.Context, name string, reg *registry, cache, commit string, extra ...string) (row, error) {
	logs := filepath.Join(b.work, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return row{}, err
	}
	slug := b.slug(name)
	report := filepath.Join(logs, slug+"-release.json")
	args := []string{
		"--push", "--registry", reg.host + "/agent-images", "--insecure",
		"--runtime", b.runtime,
		"--work-dir", filepath.Join(b.work, "work"),
		"--commit", commit,
		"--output", report,
		"--override-input", "nixpkgs=path:" + filepath.Join(b.inputs, "nixpkgs"),
		"--override-input", "llm-agents=path:" + filepath.Join(b.inputs, "llm-agents"),
		// llm-agents keeps its own nixpkgs; here it is the same bench
		// nixpkgs, whose runtimes the agents share with the base.
		"--override-input", "llm-agents/nixpkgs=path:" + filepath.Join(b.inputs, "nixpkgs"),
	}
	if b.agents == "all" {
		args = append(args, "--all")
	} else {
		args = append(args, "--agent", b.agents)
	}
	if b.systems != "" {
		args = append(args, "--system", b.systems)
	}
	if b.jobs > 0 {
		args = append(args, "--jobs", strconv.Itoa(b.jobs))
	}
	if b.key {
		args = append(args, "--key", filepath.Join(b.work, "cosign.key"))
	} else {
		args = append(args, "--sign=false")
	}
	args = append(args, extra...)
	env, err := b.withLayerCache(cache)
	if err != nil {
		return row{}, err
	}

	reg.proxy.Reset()
	if err := os.WriteFile(b.nixLog, nil, 0o644); err != nil {
		return row{}, err
	}
	before, err := storedBytes(reg.Storage)
	if err != nil {
		return row{}, err
	}
	logPath := filepath.Join(logs, slug+"-release.log")
	log, err := os.Create(logPath)
	if err != nil {
		return row{}, err
	}
	defer log.Close()
	cmd := exec.CommandContext(ctx, b.release, args...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = b.root, env, log, log
	bed := reg.measureBed()
	m, err := runMeasured(cmd)
	if err != nil {
		return row{}, fmt.Errorf("%s: release %s: %w\n%s", name, strings.Join(args, " "), err, lastLines(logPath, 20))
	}
	after, err := storedBytes(reg.Storage)
	if err != nil {
		return row{}, err
	}
	r := row{name: name, wall: m.wall, cpu: m.cpu, peakRSS: m.peakRSS, busy: m.busy, bed: bed(), requests: reg.proxy.Summary(), stored: after - before, report: report}
	if r.nix, err = nixCalls(b.nixLog); err != nil {
		return row{}, err
	}
	if r.agents, err = statuses(report); err != nil {
		return row{}, err
	}
	return r, nil
}

// withLayerCache is the environment of a release whose layer cache is the
// one named label: release keeps it under XDG_CACHE_HOME, so each label
// gets its own, while nix's cache there stays the user's.
func (b *bench) withLayerCache(label string) ([]string, error) {
	dir := filepath.Join(b.work, "caches", label)
	user, err := os.UserCacheDir()
	if err != nil {
		return nil, err
	}
	for _, d := range []string{dir, filepath.Join(user, "nix")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.Symlink(filepath.Join(user, "nix"), filepath.Join(dir, "nix")); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	return append(slices.Clone(b.env), "XDG_CACHE_HOME="+dir), nil
}

// nixCalls counts the nix wrapper's log by subcommand.
func nixCalls(path string) (map[string]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, line := range strings.Fields(string(b)) {
		out[line]++
	}
	return out, nil
}

// statuses sums the agents' statuses in a release.json, e.g. "29 unchanged, 1 done".
func statuses(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var rep struct {
		Agents []struct {
			Status string `json:"status"`
		} `json:"agents"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	count := map[string]int{}
	for _, a := range rep.Agents {
		count[a.Status]++
	}
	var parts []string
	for s, n := range count {
		parts = append(parts, fmt.Sprintf("%d %s", n, s))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", "), nil
}

// storedBytes is the size of every blob a docker-registry stores (each
// once, however many repositories link it), manifests included.
func storedBytes(storage string) (int64, error) {
	var total int64
	blobs := filepath.Join(storage, "docker", "registry", "v2", "blobs")
	err := filepath.WalkDir(blobs, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && d.Name() == "data" {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			total += fi.Size()
		}
		return nil
	})
	return total, err
}

// layerSet describes the distinct layers of a set of images.
type layerSet struct {
	layers int
	// bytes is their uncompressed size.
	bytes int64
}

// uniqueLayers reads the archives' tar headers (seeking past the layers)
// and adds up each distinct layer once; a layer's entry is named by its
// uncompressed digest.
func uniqueLayers(archives []archive) (layerSet, error) {
	if len(archives) == 0 {
		return layerSet{}, errors.New("no archives")
	}
	var set layerSet
	seen := map[string]bool{}
	for _, a := range archives {
		err := eachLayer(a.path, func(name string, size int64, _ io.Reader) error {
			if !seen[name] {
				seen[name] = true
				set.layers++
				set.bytes += size
			}
			return nil
		})
		if err != nil {
			return layerSet{}, err
		}
	}
	return set, nil
}

func eachLayer(archive string, f func(name string, size int64, r io.Reader) error) error {
	file, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer file.Close()
	tr := tar.NewReader(file)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", archive, err)
		}
		if strings.HasSuffix(h.Name, "/layer.tar") {
			if err := f(strings.TrimSuffix(h.Name, "/layer.tar"), h.Size, tr); err != nil {
				return err
			}
		}
	}
}

// compressSpeed measures how fast this machine compresses layers as
// release does, all cores at once, in bytes per second: a sample of whole
// layers, up to 64 MiB, is compressed layer by layer by one goroutine per
// core. The first layer, compressed, must be a blob the registry at
// storage holds (a release pushed it with c), or the speed would be
// another compressor's.
func compressSpeed(archives []archive, c flake.Compression, storage string) (float64, error) {
	const want = 64 << 20
	var sample [][]byte
	size := 0
	errFull := errors.New("full")
	for _, a := range archives {
		err := eachLayer(a.path, func(_ string, _ int64, r io.Reader) error {
			layer, err := io.ReadAll(r)
			sample, size = append(sample, layer), size+len(layer)
			if err == nil && size >= want {
				return errFull
			}
			return err
		})
		if errors.Is(err, errFull) {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	if len(sample) == 0 {
		return 0, errors.New("no layers to compress")
	}
	h := sha256.New()
	if err := compress(h, c, sample[0]); err != nil {
		return 0, err
	}
	digest := hex.EncodeToString(h.Sum(nil))
	if _, err := os.Stat(filepath.Join(storage, "docker", "registry", "v2", "blobs", "sha256", digest[:2], digest, "data")); err != nil {
		return 0, fmt.Errorf("a layer compressed with %s by the bench is sha256:%s, which release did not push: make compress write what flake's compressor writes", c, digest)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range cores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, layer := range sample {
				_ = compress(io.Discard, c, layer)
			}
		}()
	}
	wg.Wait()
	return float64(size*cores) / time.Since(start).Seconds(), nil
}

// compress writes data through the compressor release uses (flake's
// Compression.compressor: klauspost's gzip at BestSpeed, or its zstd at
// the default level on one goroutine), a new one per layer as release
// makes them.
func compress(w io.Writer, c flake.Compression, data []byte) error {
	var zw io.WriteCloser
	var err error
	if c == flake.Zstd {
		zw, err = zstd.NewWriter(w, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
	} else {
		zw, err = gzip.NewWriterLevel(w, gzip.BestSpeed)
	}
	if err != nil {
		return err
	}
	if _, err := zw.Write(data); err != nil {
		return err
	}
	return zw.Close()
}

// loopbackThroughput measures how fast the registry at addr takes blob
// uploads over loopback: one 96 MiB upload per core at once, as release
// uploads several layers at a time, in bytes per second.
func loopbackThroughput(ctx context.Context, addr string) (float64, error) {
	const size = 96 << 20
	blobs := make([][]byte, cores)
	digests := make([]string, cores)
	for i := range blobs {
		blobs[i] = make([]byte, size)
		_, _ = rand.Read(blobs[i])
		sum := sha256.Sum256(blobs[i])
		digests[i] = "sha256:" + hex.EncodeToString(sum[:])
	}
	start := time.Now()
	errs := make([]error, cores)
	var wg sync.WaitGroup
	for i := range blobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = uploadBlob(ctx, addr, fmt.Sprintf("throughput/probe%d", i), blobs[i], digests[i])
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("measuring the registry's throughput: %w", err)
	}
	return float64(size*cores) / elapsed.Seconds(), nil
}

// uploadBlob uploads data as go-containerregistry does: POST, one PATCH
// with the whole body, PUT with the digest.
func uploadBlob(ctx context.Context, addr, repo string, data []byte, digest string) error {
	do := func(method, u string, body []byte, want int) (string, error) {
		req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
		if err != nil {
			return "", err
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, bufio.NewReader(resp.Body))
		if resp.StatusCode != want {
			return "", fmt.Errorf("%s %s = %s, want %d", method, u, resp.Status, want)
		}
		loc, err := resp.Location()
		if err != nil {
			return "", nil
		}
		return loc.String(), nil
	}
	loc, err := do(http.MethodPost, "http://"+addr+"/v2/"+repo+"/blobs/uploads/", nil, http.StatusAccepted)
	if err != nil {
		return err
	}
	if loc, err = do(http.MethodPatch, loc, data, http.StatusAccepted); err != nil {
		return err
	}
	u, err := url.Parse(loc)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("digest", digest)
	u.RawQuery = q.Encode()
	_, err = do(http.MethodPut, u.String(), nil, http.StatusCreated)
	return err
}

// mountLimit measures how fast the registry at addr links blobs it holds
// into another repository, the one request a blob shared by several
// agents costs each further agent's repository: every mount the push in
// reqs made, made again into new repositories, 64 at once over kept
// connections. It returns how many mounts that was and how long they took.
func mountLimit(ctx context.Context, addr string, reqs []regproxy.Request) (int, time.Duration, error) {
	var mounts []string
	for _, r := range reqs {
		if r.Method == http.MethodPost && strings.Contains(r.RawQuery, "mount=") && r.Status == http.StatusCreated {
			mounts = append(mounts, "http://"+addr+strings.Replace(r.Path, "/v2/", "/v2/mount-limit/", 1)+"?"+r.RawQuery)
		}
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	defer t.CloseIdleConnections()
	client := &http.Client{Transport: t}
	next := make(chan string)
	errs := make([]error, 64)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range errs {
		wg.Go(func() {
			for u := range next {
				if errs[i] != nil {
					continue
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
				if err != nil {
					errs[i] = err
					continue
				}
				resp, err := client.Do(req)
				if err != nil {
					errs[i] = err
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					errs[i] = fmt.Errorf("POST %s = %s, want 201 Created", u, resp.Status)
				}
			}
		})
	}
	for _, u := range mounts {
		next <- u
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, 0, fmt.Errorf("measuring the registry's mounts: %w", err)
	}
	return len(mounts), time.Since(start), nil
}
