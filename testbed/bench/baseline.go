package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/nothingnesses/agent-images/testbed/regproxy"
	"github.com/nothingnesses/agent-images/testbed/testenv"
)

// baseline publishes the archives the cold release built the way one would
// without release: a sequential `skopeo copy` of each per-arch archive, then
// one manifest list per agent made and pushed by podman.
func (b *bench) baseline(ctx context.Context, reg *testenv.Registry, p *regproxy.Proxy, host string) (row, error) {
	name := "baseline: skopeo copy loop + podman manifest lists"
	slug := b.slug(name)
	logPath := filepath.Join(b.work, "logs", slug+"-baseline.log")
	log, err := os.Create(logPath)
	if err != nil {
		return row{}, err
	}
	defer log.Close()
	archives, err := filepath.Glob(filepath.Join(b.work, "work", "archives", "*.tar"))
	if err != nil {
		return row{}, err
	}
	sort.Strings(archives)
	bySystem := map[string][]string{}
	var agents []string
	for _, a := range archives {
		agent, system, ok := splitArchive(filepath.Base(a))
		if !ok {
			return row{}, fmt.Errorf("archive %s is not named <agent>-<system>.tar", a)
		}
		if _, seen := bySystem[agent]; !seen {
			agents = append(agents, agent)
		}
		bySystem[agent] = append(bySystem[agent], system)
	}

	p.Reset()
	r := row{name: name}
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
	start, startCPU := time.Now(), machineCPU()
	for _, a := range archives {
		agent, system, _ := splitArchive(filepath.Base(a))
		if err := run("skopeo", "copy", "--quiet", "--dest-tls-verify=false",
			"docker-archive:"+a, "docker://"+host+"/baseline/"+agent+":"+system); err != nil {
			return row{}, err
		}
	}
	for _, agent := range agents {
		list := "agent-images-bench-" + b.seed + "-" + agent
		if err := run("podman", "manifest", "create", list); err != nil {
			return row{}, err
		}
		for _, system := range bySystem[agent] {
			if err := run("podman", "manifest", "add", "--tls-verify=false", list, "docker://"+host+"/baseline/"+agent+":"+system); err != nil {
				return row{}, err
			}
		}
		err := run("podman", "manifest", "push", "--all=false", "--tls-verify=false", list, "docker://"+host+"/baseline/"+agent+":latest")
		_ = run("podman", "manifest", "rm", list)
		if err != nil {
			return row{}, err
		}
	}
	r.wall, r.busy = time.Since(start), startCPU.busySince()
	r.requests = p.Summary()
	if r.stored, err = storedBytes(reg.Storage); err != nil {
		return row{}, err
	}
	r.agents = fmt.Sprintf("%d lists", len(agents))
	return r, nil
}

// splitArchive splits "<agent>-<system>.tar", the names build gives archives.
func splitArchive(file string) (agent, system string, ok bool) {
	base := strings.TrimSuffix(file, ".tar")
	for _, s := range []string{"x86_64-linux", "aarch64-linux"} {
		if a, found := strings.CutSuffix(base, "-"+s); found {
			return a, s, true
		}
	}
	return "", "", false
}
