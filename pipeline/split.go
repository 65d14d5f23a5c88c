package pipeline

import (
	"context"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/nothingnesses/agent-images/build"
	"github.com/nothingnesses/agent-images/matrix"
	"github.com/nothingnesses/agent-images/publish"
)

// BuildStaged is the first half of a split release, run once per system on
// a native runner: build and smoke-test the selected targets, then push each
// per-arch image by digest under its staging tag. No index or tag moves.
func BuildStaged(ctx context.Context, o Options) (*Report, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if !o.Push {
		return nil, fmt.Errorf("release build stages images in a registry for release merge: add --push and --registry (or run `release` without a subcommand for a local release)")
	}
	targets, err := o.targets(ctx)
	if err != nil {
		return nil, err
	}
	ts, err := o.buildAndTest(ctx, targets, false)
	if err != nil {
		return nil, err
	}
	reg := o.registry()
	key := o.stagingKey()
	agents, by := group(ts)
	rep := &Report{Registry: o.Registry, Commit: o.Commit, Agents: make([]AgentReport, len(agents))}
	forEachAgent(o.Jobs, agents, func(i int, agent string) {
		ar := AgentReport{Agent: agent, Version: by[agent][0].Target.Image.Version, Status: StageDone}
		repo, err := o.Repository(agent)
		for _, t := range by[agent] {
			plat, _ := t.Target.System.Platform()
			pr := PlatformReport{System: string(t.Target.System), Platform: plat.String(), DrvPath: t.DrvPath, Smoke: brief(t.Smoke)}
			switch {
			case t.Err != nil:
				pr.Error = t.Err.Error()
			case err != nil:
				pr.Error = err.Error()
			default:
				o.Events(Event{Agent: agent, System: t.Target.System, Stage: StagePushing})
				staged, serr := reg.Stage(ctx, repo, key, publish.Part{Platform: plat, Image: t.Image})
				if serr != nil {
					pr.Error = serr.Error()
				} else {
					pr.Digest, pr.Size = staged.Digest.String(), staged.Size
					ar.Tags = append(ar.Tags, publish.StagingTag(key, plat))
					ar.Repository = repo.String()
				}
			}
			if pr.Error != "" {
				ar.Status, ar.Error = StageFailed, joinErr(ar.Error, pr.Error)
			}
			ar.Platforms = append(ar.Platforms, pr)
		}
		o.Events(Event{Agent: agent, Stage: ar.Status, Detail: ar.Error})
		rep.Agents[i] = ar
	})
	return rep, nil
}

// Merge is the second half of a split release: find every per-arch image
// the build jobs staged for the selected agents, check each is for the right
// platform and the version the flake has now, then push the index, sign and
// move the tags as Release does.
func Merge(ctx context.Context, o Options) (*Report, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if o.Registry == "" {
		return nil, fmt.Errorf("release merge reads staged images from a registry: give --registry")
	}
	o.Push = true
	targets, err := o.targets(ctx)
	if err != nil {
		return nil, err
	}
	reg := o.registry()
	dest := &registryDest{reg: reg}
	key := o.stagingKey()
	var agents []string
	by := map[string][]matrix.Target{}
	for _, t := range targets {
		if _, ok := by[t.Agent]; !ok {
			agents = append(agents, t.Agent)
		}
		by[t.Agent] = append(by[t.Agent], t)
	}
	// The build jobs' derivations, for provenance: the same flake and lock
	// give the same derivations here as on the runners.
	drvs, err := build.DrvPaths(ctx, o.Flake, targets)
	if err != nil {
		return nil, err
	}
	rep := &Report{Registry: o.Registry, Commit: o.Commit, Agents: make([]AgentReport, len(agents))}
	forEachAgent(o.Jobs, agents, func(i int, agent string) {
		rep.Agents[i] = o.mergeAgent(ctx, dest, reg, key, by[agent], drvs)
	})
	return rep, nil
}

func (o *Options) mergeAgent(ctx context.Context, dest *registryDest, reg *publish.Registry, key string, ts []matrix.Target, drvPaths map[string]string) AgentReport {
	img := ts[0].Image
	ar := AgentReport{Agent: img.Attr, Version: img.Version, Status: StageFailed}
	repo, err := o.Repository(img.Attr)
	if err != nil {
		return o.failed(ar, err)
	}
	var platforms []v1.Platform
	for _, t := range ts {
		p, _ := t.System.Platform()
		platforms = append(platforms, p)
		ar.Platforms = append(ar.Platforms, PlatformReport{System: string(t.System), Platform: p.String()})
	}
	staged, err := reg.Staged(ctx, repo, key, platforms)
	if err != nil {
		return o.failed(ar, err)
	}
	var parts []publish.Part
	var stale []string
	for _, s := range staged {
		if err := checkStaged(s, img.Version); err != nil {
			stale = append(stale, err.Error())
			continue
		}
		parts = append(parts, s.Part)
	}
	if len(stale) > 0 {
		return o.failed(ar, fmt.Errorf("stale per-arch images for %s: %s; rebuild them with `release build --push`", repo, strings.Join(stale, "; ")))
	}
	drvs := map[string]string{}
	for i, t := range ts {
		drvs[string(t.System)] = drvPaths[t.String()]
		ar.Platforms[i].DrvPath = drvPaths[t.String()]
	}
	return o.publishAgent(ctx, dest, ar, img, parts, drvs)
}

// checkStaged rejects a staged image built for another platform or for
// another version of the agent than the flake has now.
func checkStaged(s publish.StagedPart, version string) error {
	cf, err := s.Image.ConfigFile()
	if err != nil {
		return fmt.Errorf("%s: reading config: %w", s.Tag, err)
	}
	if cf.OS != s.Platform.OS || cf.Architecture != s.Platform.Architecture {
		return fmt.Errorf("%s is %s/%s, want %s", s.Tag, cf.OS, cf.Architecture, s.Platform)
	}
	if got := cf.Config.Labels[publish.AnnotationVersion]; got != version {
		return fmt.Errorf("%s has version %q, the flake has %q", s.Tag, got, version)
	}
	return nil
}

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
