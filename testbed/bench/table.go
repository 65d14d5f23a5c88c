package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// limits are the physical limits measured on this machine.
type limits struct {
	images, layers int
	// uncompressed is the size of the distinct layers; compressed what the
	// registry stored after the cold release.
	uncompressed, compressed int64
	// throughput is the registry's loopback upload speed and gzipSpeed the
	// speed of gzip at release's level on all cores, in bytes per second.
	throughput, gzipSpeed float64
	// throughputBusy and gzipBusy are how busy the machine was while each
	// was measured.
	throughputBusy, gzipBusy float64
}

func (b *bench) print(w io.Writer) {
	fmt.Fprintf(w, "Machine: %s\n", machine(b.start))
	fmt.Fprintf(w, "Set: %s at scale %g (seed %s): %d images, %d distinct layers, %s uncompressed, %s stored gzipped (%.2fx)\n\n",
		b.set(), b.scale, b.seed, b.limits.images, b.limits.layers, mb(b.limits.uncompressed), mb(b.limits.compressed),
		float64(b.limits.uncompressed)/float64(max(b.limits.compressed, 1)))

	fmt.Fprintln(w, "| run | wall | CPU time | CPU use | machine busy | peak RSS | nix runs | requests | writes | manifest PUTs | uploaded | new bytes stored | uploaded / stored | agents |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|")
	for _, r := range b.rows {
		ratio := "–"
		if r.stored > 0 {
			ratio = fmt.Sprintf("%.2f", float64(r.requests.BytesUploaded)/float64(r.stored))
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.0f%% | %.0f%% | %s | %s | %d | %d | %d | %s | %s | %s | %s |\n",
			r.name, secs(r.wall), secs(r.cpu), 100*r.cpu.Seconds()/r.wall.Seconds()/float64(cores), 100*r.busy, mb(r.peakRSS), nixRuns(r.nix),
			r.requests.Requests, r.requests.Writes, r.requests.ManifestPuts, mb(r.requests.BytesUploaded), mb(r.stored), ratio, r.agents)
	}
	upload := time.Duration(float64(b.limits.compressed) / b.limits.throughput * float64(time.Second))
	gzip := time.Duration(float64(b.limits.uncompressed) / b.limits.gzipSpeed * float64(time.Second))
	fmt.Fprintf(w, "| limit: upload the stored bytes once at the registry's loopback speed (%s/s) | %s | | | %.0f%% | | | | | | %s | | | |\n",
		mb(int64(b.limits.throughput)), secs(upload), 100*b.limits.throughputBusy, mb(b.limits.compressed))
	fmt.Fprintf(w, "| limit: gzip the distinct layers once on %d cores (%s/s) | %s | | 100%% | %.0f%% | | | | | | | | | |\n",
		cores, mb(int64(b.limits.gzipSpeed)), secs(gzip), 100*b.limits.gzipBusy)

	fmt.Fprintln(w)
	b.targets(w)
}

// targets says, for each target of the benchmark that this run measures,
// what was measured.
func (b *bench) targets(w io.Writer) {
	find := func(prefix string) row {
		for _, r := range b.rows {
			if strings.HasPrefix(r.name, prefix) {
				return r
			}
		}
		return row{}
	}
	cold, push, baseline := find("cold"), find("push"), find("baseline")
	var peak int64
	for _, r := range b.rows {
		if r.name != baseline.name {
			peak = max(peak, r.peakRSS)
		}
	}
	check := func(ok bool) string {
		if ok {
			return "met"
		}
		return "not met"
	}
	ratio := float64(cold.requests.BytesUploaded) / float64(max(cold.stored, 1))
	cpu := 100 * cold.cpu.Seconds() / cold.wall.Seconds() / float64(cores)
	speedup := baseline.wall.Seconds() / push.wall.Seconds()
	cpuSpeedup := baseline.cpu.Seconds() / push.cpu.Seconds()
	fmt.Fprintf(w, "- bytes uploaded / unique bytes stored, cold: %.2f (target 1.00): %s\n", ratio, check(ratio < 1.005))
	fmt.Fprintf(w, "- peak RSS of release, any run: %s (target at most 300 MB): %s\n", mb(peak), check(peak <= 300e6))
	fmt.Fprintf(w, "- CPU use of the cold release: %.0f%% of %d cores (target at least 85%%): %s\n", cpu, cores, check(cpu >= 85))
	extra := ""
	if b.runtime != "none" || b.key {
		extra = " (release also smoke-tests and signs in this run; the target is for --runtime none --sign=false)"
	}
	fmt.Fprintf(w, "- push of built images vs the skopeo loop: %.2fx faster, %.2fx less CPU time (target at least 2x faster): %s%s\n", speedup, cpuSpeedup, check(speedup >= 2), extra)
	for _, r := range b.rows {
		if strings.HasPrefix(r.name, "rerun") {
			fmt.Fprintf(w, "- %s: %s, %d registry writes\n", r.name, nixRuns(r.nix), r.requests.Writes)
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
