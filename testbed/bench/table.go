package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// limits are the physical limits measured on this machine.
type limits struct {
	images, layers int
	// uncompressed is the size of the distinct layers.
	uncompressed int64
	// throughput is the registry's loopback upload speed, in bytes per
	// second, and throughputBusy how busy the machine was meanwhile.
	throughput, throughputBusy float64
	compress                   []compressLimit
	// mounts is how many blobs the push mounted, one per further
	// repository that needs a blob, and mountTime how long the registry
	// takes to mount as many again, 64 at once; mountBusy is how busy
	// the machine was meanwhile.
	mounts    int
	mountTime time.Duration
	mountBusy float64
}

// compressLimit is one compression's share of the limits, and the push
// (into an empty registry, with an empty layer cache) they bound.
type compressLimit struct {
	compression flake.Compression
	push        row
	// speed is compressing layers on all cores, in bytes per second, and
	// busy how busy the machine was meanwhile.
	speed, busy float64
}

// times are the limit of a push: compressing the distinct layers once on
// all cores, then uploading what is stored once.
func (b *bench) times(c compressLimit) (compress, upload time.Duration) {
	compress = time.Duration(float64(b.limits.uncompressed) / c.speed * float64(time.Second))
	upload = time.Duration(float64(c.push.stored) / b.limits.throughput * float64(time.Second))
	return compress, upload
}

func (b *bench) print(w io.Writer) {
	storage := "on disk, in the work directory"
	if b.inMemory {
		storage = "in memory (tmpfs)"
	}
	fmt.Fprintf(w, "Machine: %s; the registries' storage %s, GOGC=%d\n", machine(b.start), storage, testenv.RegistryGOGC)
	if b.rssOnly {
		fmt.Fprintf(w, "Set: %s at scale %g (seed %s), %s stored gzipped\n\n", b.set(), b.scale, b.seed, mb(b.rows[0].stored))
	} else {
		gzipped := b.limits.compress[0].push.stored
		fmt.Fprintf(w, "Set: %s at scale %g (seed %s): %d images, %d distinct layers, %s uncompressed, %s stored gzipped (%.2fx)\n\n",
			b.set(), b.scale, b.seed, b.limits.images, b.limits.layers, mb(b.limits.uncompressed), mb(gzipped),
			float64(b.limits.uncompressed)/float64(max(gzipped, 1)))
	}

	fmt.Fprintf(w, "| run | wall | CPU time | CPU, %% of %d cores | registry + proxy CPU, %% of cores | machine busy | peak RSS | nix runs | requests | writes | manifest PUTs | uploaded | new bytes stored | uploaded / stored | agents |\n", cores)
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|")
	for _, r := range b.rows {
		fmt.Fprintf(w, "| %s | %s | %s | %.0f%% | %.0f%% + %.0f%% | %.0f%% | %s | %s | %d | %d | %d | %s | %s | %s | %s |\n",
			r.name, secs(r.wall), secs(r.cpu), r.cpuShare(), r.share(r.bed.registry), r.share(r.bed.proxy), 100*r.busy, mb(r.peakRSS), nixRuns(r.nix),
			r.requests.Requests, r.requests.Writes, r.requests.ManifestPuts, mb(r.requests.BytesUploaded), mb(r.stored), r.uploadRatio(), r.agents)
	}
	for _, c := range b.limits.compress {
		_, upload := b.times(c)
		fmt.Fprintf(w, "| limit: upload the %s set once at the registry's loopback speed (%s/s) | %s | | | | %.0f%% | | | | | | %s | | | |\n",
			c.compression, mb(int64(b.limits.throughput)), secs(upload), 100*b.limits.throughputBusy, mb(c.push.stored))
	}
	for _, c := range b.limits.compress {
		compress, _ := b.times(c)
		fmt.Fprintf(w, "| limit: %s the distinct layers once on %d cores (%s/s) | %s | | 100%% | | %.0f%% | | | | | | | | | |\n",
			c.compression, cores, mb(int64(c.speed)), secs(compress), 100*c.busy)
	}
	fmt.Fprintf(w, "| limit: mount the %d blobs the push mounted, 64 at once (%.0f/s) | %s | | | | %.0f%% | | | %d | %d | | | | | |\n",
		b.limits.mounts, float64(b.limits.mounts)/b.limits.mountTime.Seconds(), secs(b.limits.mountTime), 100*b.limits.mountBusy, b.limits.mounts, b.limits.mounts)
	for _, c := range b.limits.compress {
		compress, upload := b.times(c)
		fmt.Fprintf(w, "| limit: push with %s, compress and upload | %s | | | | | | | | | | | | | |\n", c.compression, secs(compress+upload))
		fmt.Fprintf(w, "| limit: push with %s, compress, upload and mount | %s | | | | | | | | | | | | | |\n", c.compression, secs(compress+upload+b.limits.mountTime))
	}

	fmt.Fprintln(w)
	b.targets(w)
}

// cpuShare is the CPU time of release and its children as a share of all
// the cores over the run, in percent.
func (r row) cpuShare() float64 { return r.share(r.cpu) }

// share is cpu as a percentage of all the cores' time during the run.
func (r row) share(cpu time.Duration) float64 {
	return 100 * cpu.Seconds() / r.wall.Seconds() / float64(cores)
}

// bedFloor is the least wall time the test bed's registry and proxy needed
// for what they did during the run, with every core to themselves: on a
// machine they share with release, no run can be shorter.
func (r row) bedFloor() time.Duration { return r.bed.total() / time.Duration(cores) }

// ratio is the bytes uploaded over the bytes the registry gained.
func (r row) ratio() float64 { return float64(r.requests.BytesUploaded) / float64(r.stored) }

func (r row) uploadRatio() string {
	if r.stored == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", r.ratio())
}

// targets says, for each of issue 20's targets, what this run measured and
// whether it is met.
func (b *bench) targets(w io.Writer) {
	find := func(name string) row {
		for _, r := range b.rows {
			if r.name == name {
				return r
			}
		}
		return row{}
	}
	cold, warm, baseline := find(coldRun), find(warmRun), find(baselineRun)
	check := func(ok bool) string {
		if ok {
			return "met"
		}
		return "missed"
	}
	// The releases' worst upload ratio and peak RSS, and where they were.
	var worst, peak row
	stored := 0
	for _, r := range b.rows {
		if r.name == baseline.name {
			continue
		}
		if r.stored > 0 {
			stored++
			if worst.stored == 0 || r.ratio() > worst.ratio() {
				worst = r
			}
		}
		if r.peakRSS > peak.peakRSS {
			peak = r
		}
	}

	rss := func() {
		fmt.Fprintf(w, "- peak RSS of release, in each run: at most %s, in %q (target at most 300 MB, at scale 1.0): %s\n",
			mb(peak.peakRSS), peak.name, check(peak.peakRSS <= 300e6))
	}
	if b.rssOnly {
		rss()
		return
	}
	if b.runtime != "none" || b.key {
		fmt.Fprintln(w, "- this run also smoke-tests and signs: the targets are for --runtime none --sign=false")
	}
	fmt.Fprintf(w, "- cold release CPU: %.0f%% of the %d cores for release and its children (target at least 90%%): %s\n", cold.cpuShare(), cores, check(cold.cpuShare() >= 90))
	fmt.Fprintf(w, "  - the test bed's registry and its proxy took %.0f%% and %.0f%% of the cores meanwhile, which a release to a remote registry leaves to release: together %.0f%%\n",
		cold.share(cold.bed.registry), cold.share(cold.bed.proxy), cold.share(cold.cpu+cold.bed.total()))
	fmt.Fprintf(w, "  - the machine was %.0f%% busy: with the test bed on the same cores, release could have had at most %.0f%%\n",
		100*cold.busy, 100*cold.busy-cold.share(cold.bed.total()))
	for _, c := range b.limits.compress {
		compress, upload := b.times(c)
		ratio := c.push.wall.Seconds() / (compress + upload).Seconds()
		fmt.Fprintf(w, "- push with %s, empty layer cache: %s (%s of CPU), %.1fx its limit of %s (compress %s, upload %s; target within 2x): %s\n",
			c.compression, secs(c.push.wall), secs(c.push.cpu), ratio, secs(compress+upload), secs(compress), secs(upload), check(ratio <= 2))
		fmt.Fprintf(w, "  - with the registry's %d mounts (%s) added to that limit, which the issue's leaves out: %.1fx\n",
			b.limits.mounts, secs(b.limits.mountTime), c.push.wall.Seconds()/(compress+upload+b.limits.mountTime).Seconds())
		floor := compress + c.push.bedFloor()
		fmt.Fprintf(w, "  - the test bed's registry and proxy used %s of CPU meanwhile; with the compression, no push on these %d cores can take less than %s, %.1fx the limit\n",
			secs(c.push.bed.total()), cores, secs(floor), floor.Seconds()/(compress+upload).Seconds())
	}
	gzip := b.limits.compress[0]
	speedup := baseline.wall.Seconds() / gzip.push.wall.Seconds()
	fmt.Fprintf(w, "- push vs the skopeo loop: %.1fx faster, %.1fx less CPU time (target at least 5x faster): %s\n",
		speedup, baseline.cpu.Seconds()/gzip.push.cpu.Seconds(), check(speedup >= 5))
	_, upload := b.times(gzip)
	warmRatio := warm.wall.Seconds() / upload.Seconds()
	fmt.Fprintf(w, "- second cold release, warm layer cache: %s (%s of CPU), %.1fx the upload limit of %s (target within 1.5x): %s\n",
		secs(warm.wall), secs(warm.cpu), warmRatio, secs(upload), check(warmRatio <= 1.5))
	fmt.Fprintf(w, "  - the test bed's registry and proxy used %s of CPU meanwhile: on these %d cores that alone takes %s, %.1fx the upload limit\n",
		secs(warm.bed.total()), cores, secs(warm.bedFloor()), warm.bedFloor().Seconds()/upload.Seconds())
	fmt.Fprintf(w, "- uploaded / unique bytes stored, in each of the %d releases that stored: at most %s, in %q (target 1.00): %s\n",
		stored, worst.uploadRatio(), worst.name, check(worst.ratio() < 1.005))
	rss()
	for _, r := range b.rows {
		if strings.HasPrefix(r.name, "rerun") {
			fmt.Fprintf(w, "- %s: %s, %s, %d registry writes\n", r.name, secs(r.wall), nixRuns(r.nix), r.requests.Writes)
		}
	}
}

func (b *bench) set() string {
	agents, systems := "all agents", "both systems"
	if b.agents != "all" {
		agents = b.agents
	}
	if b.systems != "" {
		systems = b.systems
	}
	return agents + " x " + systems
}

// nixRuns is e.g. "2 (1 eval, 1 build)".
func nixRuns(calls map[string]int) string {
	if calls == nil {
		return "–"
	}
	total := 0
	var parts []string
	for _, sub := range []string{"eval", "build"} {
		total += calls[sub]
		parts = append(parts, fmt.Sprintf("%d %s", calls[sub], sub))
	}
	for sub, n := range calls {
		if sub != "eval" && sub != "build" {
			total += n
			parts = append(parts, fmt.Sprintf("%d %s", n, sub))
		}
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

// machine describes this machine: CPU, cores, memory, load when the run
// started, and the tools measured.
func machine(start time.Time) string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb)
		mem = fmt.Sprintf(", %.0f GB RAM", float64(kb)/1e6)
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = ", load " + strings.Fields(string(b))[0]
	}
	versions := []string{runtime.Version()}
	for _, tool := range [][]string{{"nix", "--version"}, {"docker-registry", "--version"}, {"skopeo", "--version"}} {
		if out, err := exec.Command(tool[0], tool[1:]...).Output(); err == nil {
			versions = append(versions, strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0]))
		}
	}
	return fmt.Sprintf("%s, %d cores%s%s at start (%s); %s", model, cores, mem, load, start.UTC().Format("2006-01-02"), strings.Join(versions, ", "))
}
