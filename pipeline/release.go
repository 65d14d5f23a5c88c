package pipeline

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/nothingnesses/agent-images/matrix"
	"github.com/nothingnesses/agent-images/publish"
)

// Release runs the whole pipeline in this process: matrix, build, smoke,
// then per agent publish, sign and tags. It returns a report even when some
// agents failed; the error is for failures that stop everything (the flake
// does not evaluate, a flag is wrong).
func Release(ctx context.Context, o Options) (*Report, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	targets, err := o.targets(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range targets {
		o.Events(Event{Agent: t.Agent, System: t.System, Stage: StagePlanned})
	}
	ts, err := o.buildAndTest(ctx, targets, o.DryRun)
	if err != nil {
		return nil, err
	}
	rep := &Report{Commit: o.Commit, DryRun: o.DryRun}
	var dest destination
	if o.Push {
		rep.Registry = o.Registry
		reg := o.registry()
		dest = &registryDest{reg: reg}
	} else {
		rep.Layout = o.LayoutDir
		l, err := publish.OpenLayout(o.LayoutDir)
		if err != nil {
			return nil, err
		}
		dest = &layoutDest{layout: l}
	}
	agents, by := group(ts)
	rep.Agents = make([]AgentReport, len(agents))
	forEachAgent(o.Jobs, agents, func(i int, agent string) {
		rep.Agents[i] = o.releaseAgent(ctx, dest, by[agent])
	})
	return rep, nil
}

func (o *Options) pushProgress(p publish.Progress) {
	agent := p.Repository[strings.LastIndex(p.Repository, "/")+1:]
	o.Events(Event{Agent: agent, Stage: StagePushing, Complete: p.Complete, Total: p.Total})
}

// releaseAgent publishes one agent whose targets all built and passed.
func (o *Options) releaseAgent(ctx context.Context, dest destination, ts []tested) AgentReport {
	img := ts[0].Target.Image
	ar := AgentReport{Agent: img.Attr, Version: img.Version, Status: StageFailed}
	var errs []string
	var parts []publish.Part
	for _, t := range ts {
		plat, _ := t.Target.System.Platform()
		pr := PlatformReport{System: string(t.Target.System), Platform: plat.String(), DrvPath: t.DrvPath, Smoke: brief(t.Smoke)}
		if t.Image != nil {
			if d, err := t.Image.Digest(); err == nil {
				pr.Digest = d.String()
			}
		}
		if t.Err != nil {
			pr.Error = t.Err.Error()
			errs = append(errs, t.Err.Error())
		} else {
			parts = append(parts, publish.Part{Platform: plat, Image: t.Image})
		}
		ar.Platforms = append(ar.Platforms, pr)
	}
	if len(errs) > 0 {
		return o.failed(ar, fmt.Errorf("not published: %s", strings.Join(errs, "; ")))
	}
	drvs := map[string]string{}
	for _, t := range ts {
		drvs[string(t.Target.System)] = t.DrvPath
	}
	return o.publishAgent(ctx, dest, ar, img, parts, drvs)
}

// publishAgent sends an agent's tested per-arch images to dest (index,
// signatures, tags) and completes its report.
func (o *Options) publishAgent(ctx context.Context, dest destination, ar AgentReport, img matrix.Image, parts []publish.Part, drvs map[string]string) AgentReport {
	tags, err := o.tags(img.Version)
	if err != nil {
		return o.failed(ar, err)
	}
	rel := publish.Release{Agent: img.Attr, Parts: parts, Annotations: o.annotations(img), Tags: tags}
	res, signing, err := dest.publish(ctx, o, img, rel, drvs)
	if res != nil {
		ar.fill(res)
	}
	ar.Signing = signing
	if err != nil {
		return o.failed(ar, err)
	}
	ar.Status = StageDone
	switch {
	case res.Unchanged:
		ar.Status = StageUnchanged
	case o.DryRun:
		ar.Status = StagePlanned
	}
	o.Events(Event{Agent: ar.Agent, Stage: ar.Status, Detail: res.Index.String()})
	return ar
}

// failed marks an agent's report as failed with err and says so.
func (o *Options) failed(ar AgentReport, err error) AgentReport {
	ar.Status, ar.Error = StageFailed, err.Error()
	o.Events(Event{Agent: ar.Agent, Stage: StageFailed, Detail: ar.Error})
	return ar
}

func (ar *AgentReport) fill(res *publish.Result) {
	ar.Repository = res.Repository
	ar.Index = res.Index.String()
	ar.Tags = res.Tags
	ar.Moved = res.Moved
	ar.Unchanged = res.Unchanged
	for _, p := range res.Platforms {
		for i := range ar.Platforms {
			if ar.Platforms[i].Platform == p.Platform.String() {
				ar.Platforms[i].Digest = p.Digest.String()
				ar.Platforms[i].Size = p.Size
			}
		}
	}
}

// destination is where a release lands: a registry or a local layout.
type destination interface {
	publish(ctx context.Context, o *Options, img matrix.Image, rel publish.Release, drvs map[string]string) (*publish.Result, any, error)
}

type layoutDest struct{ layout *publish.Layout }

func (d *layoutDest) publish(ctx context.Context, o *Options, img matrix.Image, rel publish.Release, _ map[string]string) (*publish.Result, any, error) {
	if o.DryRun {
		return plan(rel, nil)
	}
	res, err := d.layout.Publish(ctx, rel, nil)
	return res, nil, err
}

type registryDest struct {
	reg *publish.Registry
}

func (d *registryDest) publish(ctx context.Context, o *Options, img matrix.Image, rel publish.Release, drvs map[string]string) (*publish.Result, any, error) {
	repo, err := o.Repository(img.Attr)
	if err != nil {
		return nil, nil, err
	}
	if o.DryRun {
		current, err := d.reg.CurrentTags(ctx, repo, rel.Tags)
		if err != nil {
			return nil, nil, err
		}
		return plan(rel, current)
	}
	o.Events(Event{Agent: img.Attr, Stage: StagePushing})
	var signing any
	res, err := d.reg.Publish(ctx, repo, rel, o.signHook(repo, img, rel, drvs, &signing))
	return res, signing, err
}

// signHook signs between pushing and tagging.
func (o *Options) signHook(repo name.Repository, img matrix.Image, rel publish.Release, drvs map[string]string, out *any) publish.Hook {
	if o.Signer == nil {
		return func(context.Context, *publish.Result) error {
			o.Events(Event{Agent: img.Attr, Stage: StageTagging})
			return nil
		}
	}
	return func(ctx context.Context, res *publish.Result) error {
		o.Events(Event{Agent: img.Attr, Stage: StageSigning})
		req := SignRequest{
			Repository: repo,
			Index:      repo.Digest(res.Index.String()),
			Agent:      img,
			Source:     o.Source,
			Commit:     o.Commit,
			Unchanged:  res.Unchanged,
		}
		for _, p := range rel.Parts {
			d, err := p.Image.Digest()
			if err != nil {
				return err
			}
			sys, _ := matrix.SystemForPlatform(p.Platform)
			req.Images = append(req.Images, SignImage{System: sys, Platform: p.Platform, Digest: repo.Digest(d.String()), Image: p.Image, DrvPath: drvs[string(sys)]})
		}
		signed, err := o.Signer.Sign(ctx, req)
		*out = signed
		if err != nil {
			return fmt.Errorf("signing %s: %w", repo, err)
		}
		o.Events(Event{Agent: img.Attr, Stage: StageTagging})
		return nil
	}
}

// plan is the dry-run result: the index that would be pushed and the tags
// that would move, touching nothing.
func plan(rel publish.Release, current map[string]v1.Hash) (*publish.Result, any, error) {
	idx, err := publish.Index(rel.Parts, rel.Annotations)
	if err != nil {
		return nil, nil, err
	}
	d, err := idx.Digest()
	if err != nil {
		return nil, nil, err
	}
	res := &publish.Result{Index: d, Tags: rel.Tags}
	for _, p := range rel.Parts {
		pd, _ := p.Image.Digest()
		res.Platforms = append(res.Platforms, publish.PlatformResult{Platform: p.Platform, Digest: pd})
	}
	for _, t := range rel.Tags {
		if current[t] == d {
			res.Unchanged = true
			continue
		}
		res.Moved = append(res.Moved, t)
	}
	return res, nil, nil
}
