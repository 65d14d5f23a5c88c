package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/record"
)

// archive is one image of the set as a docker-archive Nix built.
type archive struct {
	agent, system, drv, path string
}

// buildArchives builds the images release reported in report with `nix
// build` of their derivations, as a user building locally would (release
// packs them from the store instead), and writes each as a docker-archive:
// what the baseline publishes and the limits read. It is not measured.
func (b *bench) buildArchives(ctx context.Context, report string) error {
	rep, err := record.ReadReport(report)
	if err != nil {
		return err
	}
	for _, a := range rep.Agents {
		for _, p := range a.Platforms {
			if p.DrvPath == "" {
				return fmt.Errorf("%s names no derivation for %s on %s", report, a.Agent, p.System)
			}
			b.archives = append(b.archives, archive{agent: a.Agent, system: p.System, drv: p.DrvPath})
		}
	}
	slices.SortFunc(b.archives, func(x, y archive) int { return strings.Compare(x.agent+" "+x.system, y.agent+" "+y.system) })
	progress("building the %d images with nix build, as docker-archives for the baseline and the limits (not measured)", len(b.archives))
	start := time.Now()
	v, err := flake.DetectVersion(ctx, flake.Run)
	if err != nil {
		return err
	}
	dir := filepath.Join(b.work, "archives")
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(cores)
	for i := range b.archives {
		a := &b.archives[i]
		name := a.agent + "-" + a.system
		g.Go(func() error {
			out, err := flake.Realise(ctx, flake.Run, v, filepath.Join(dir, "out", name), a.drv)
			if err != nil {
				return fmt.Errorf("building %s: %w", name, err)
			}
			a.path, err = flake.Archive(ctx, out[a.drv], filepath.Join(dir, name+".tar"))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	progress("built the archives in %s", secs(time.Since(start)))
	return nil
}

// baseline publishes the images' archives the way one would without
// release: a sequential `skopeo copy` of each per-arch archive, then one
// manifest list per agent made and pushed by podman.
func (b *bench) baseline(ctx context.Context, reg *registry) (row, error) {
	slug := b.slug(baselineRun)
	logPath := filepath.Join(b.work, "logs", slug+"-baseline.log")
	log, err := os.Create(logPath)
	if err != nil {
		return row{}, err
	}
	defer log.Close()

	reg.proxy.Reset()
	r := row{name: baselineRun}
	run := func(args ...string) error {
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env, cmd.Stdout, cmd.Stderr = b.env, log, log
		fmt.Fprintln(log, "$", strings.Join(args, " "))
		m, err := runMeasured(cmd)
		r.cpu += m.cpu
		r.peakRSS = max(r.peakRSS, m.peakRSS)
		if err != nil {
			return fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, lastLines(logPath, 10))
		}
		return nil
	}
	ref := func(a archive) string { return "docker://" + reg.host + "/baseline/" + a.agent + ":" + a.system }
	start, startCPU, bed := time.Now(), machineCPU(), reg.measureBed()
	for _, a := range b.archives {
		if err := run("skopeo", "copy", "--quiet", "--dest-tls-verify=false", "docker-archive:"+a.path, ref(a)); err != nil {
			return row{}, err
		}
	}
	lists := 0
	for i, a := range b.archives {
		if i > 0 && b.archives[i-1].agent == a.agent {
			continue
		}
		lists++
		list := "agent-images-bench-" + b.seed + "-" + a.agent
		if err := run("podman", "manifest", "create", list); err != nil {
			return row{}, err
		}
		for _, p := range b.archives[i:] {
			if p.agent != a.agent {
				break
			}
			if err := run("podman", "manifest", "add", "--tls-verify=false", list, ref(p)); err != nil {
				return row{}, err
			}
		}
		err := run("podman", "manifest", "push", "--all=false", "--tls-verify=false", list, "docker://"+reg.host+"/baseline/"+a.agent+":latest")
		_ = run("podman", "manifest", "rm", list)
		if err != nil {
			return row{}, err
		}
	}
	r.wall, r.busy, r.bed = time.Since(start), startCPU.busySince(), bed()
	r.requests = reg.proxy.Summary()
	if r.stored, err = storedBytes(reg.Storage); err != nil {
		return row{}, err
	}
	r.agents = fmt.Sprintf("%d lists", lists)
	return r, nil
}
