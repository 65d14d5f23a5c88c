package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nothingnesses/agent-images/publish"
	"github.com/nothingnesses/agent-images/record"
)

// Release runs the whole pipeline in this process: matrix, build, smoke,
// then per agent publish, sign and tags. It returns a report even when some
// agents failed; the error is for failures that stop everything (the flake
// does not evaluate, an option is wrong).
func Release(ctx context.Context, o Options) (*record.Report, error) {
	r, err := newRun(o, modeRelease)
	if err != nil {
		return nil, err
	}
	agents, err := r.plan(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.buildAndTest(ctx, images(agents)); err != nil {
		return nil, err
	}
	rep := &record.Report{Commit: o.Commit, DryRun: o.DryRun, Agents: reportAgents(agents)}
	var pubs []publish.Publisher
	if o.Push {
		rep.Registries = r.registryNames()
		rep.Registry = rep.Registries[0]
		for _, reg := range r.registries() {
			pubs = append(pubs, reg)
		}
	} else {
		rep.Layout = r.layoutDir()
		pubs = append(pubs, publish.NewLayout(rep.Layout))
	}
	r.forEachAgent(agents, func(a *agent) {
		var errs []error
		for _, img := range a.Platforms {
			if img.Failed() {
				errs = append(errs, img.Err)
			}
		}
		if len(errs) > 0 {
			r.fail(a, fmt.Errorf("not published: %w", errors.Join(errs...)))
			return
		}
		r.publish(ctx, pubs, a, r.signEverything)
	})
	return rep, nil
}

// signer is what a hook signs of an agent once its images and index are in
// one registry (res says which): everything in one process, the index (and
// parts copied from the staging registry) in a merge. It reports whether
// it wrote anything, and how to verify.
type signer func(ctx context.Context, a *agent, res *publish.Result) (bool, *record.Signing, error)

// publish sends an agent's tested images to each destination in turn, each
// on its own (publishTo), and sums up its report: done only when every
// destination is. One after another, so that every registry after the first
// gets the attestations made for the first (see sign) and the report keeps
// the order of --registry.
func (r *run) publish(ctx context.Context, pubs []publish.Publisher, a *agent, sign signer) {
	for _, pub := range pubs {
		a.Published = append(a.Published, r.publishTo(ctx, pub, a, sign, len(pubs) > 1))
	}
	first := a.Published[0]
	a.Repository, a.Moved, a.Kept, a.Repaired, a.Signing = first.Repository, first.Moved, first.Kept, first.Repaired, first.Signing
	a.Tags = publish.Names(a.tags)
	a.Unchanged = true
	var errs []string
	for _, p := range a.Published {
		a.Unchanged = a.Unchanged && p.Unchanged
		if p.Failed() {
			if len(pubs) > 1 {
				errs = append(errs, p.Repository+": "+p.Error)
			} else {
				errs = append(errs, p.Error)
			}
		}
	}
	switch {
	case len(errs) > 0:
		a.Status, a.Error = record.StageFailed, strings.Join(errs, "; ")
	case r.o.DryRun:
		a.Status = record.StagePlanned
	case a.Unchanged:
		a.Status = record.StageUnchanged
	default:
		a.Status = record.StageDone
	}
	detail := a.Index.String()
	if a.Error != "" {
		detail = a.Error
	}
	r.events(Event{Agent: a.name(), Stage: a.Status, Detail: detail})
}

// publishTo publishes an agent to one destination: its images, index,
// signatures and tags there (or, in a dry run, what would be), and returns
// how that went. A failure here is this destination's alone.
func (r *run) publishTo(ctx context.Context, pub publish.Publisher, a *agent, sign signer, several bool) *record.Publication {
	rel := publish.Release{
		Agent:         a.name(),
		Images:        a.Platforms,
		Version:       a.Version,
		Created:       a.Created,
		Annotations:   r.annotations(a),
		Tags:          a.tags,
		AllowRollback: r.o.AllowRollback,
	}
	p := &record.Publication{}
	// Events name the destination when there are several.
	where := func(detail string, res *publish.Result) string {
		if !several || res == nil {
			return detail
		}
		if detail == "" {
			return res.Repository
		}
		return res.Repository + ": " + detail
	}
	var res *publish.Result
	var err error
	signed := false
	if r.o.DryRun {
		res, err = pub.Plan(ctx, rel)
	} else {
		r.events(Event{Agent: a.name(), Stage: record.StagePushing})
		res, err = pub.Publish(ctx, rel, func(ctx context.Context, res *publish.Result) error {
			if res.Ref.DigestStr() != "" {
				r.events(Event{Agent: a.name(), Stage: record.StageSigning, Detail: where("", res)})
				wrote, signing, err := sign(ctx, a, res)
				if err != nil {
					return err
				}
				signed, p.Signing = wrote, signing
			}
			r.events(Event{Agent: a.name(), Stage: record.StageTagging, Detail: where("", res)})
			return nil
		})
	}
	if res != nil {
		p.Repository = res.Repository
		if res.Index.Hex != "" {
			a.Index = res.Index
		}
		p.Moved = res.Moved
		p.Kept = res.Kept
		p.Repaired = res.Repaired
		p.Unchanged = res.Unchanged && !signed
	}
	if err != nil {
		p.Status, p.Error, p.Unchanged = record.StageFailed, err.Error(), false
		if several {
			r.events(Event{Agent: a.name(), Stage: record.StageFailed, Detail: where(p.Error, res)})
		}
		return p
	}
	for _, k := range res.Kept {
		r.events(Event{Agent: a.name(), Stage: record.StageTagging,
			Detail: where(fmt.Sprintf("%s stays at %s, which is newer (%s, version %s)", k.Tag, k.Index, k.Created.Format("2006-01-02T15:04:05Z07:00"), k.Version), res)})
	}
	if len(res.Repaired) > 0 {
		r.events(Event{Agent: a.name(), Stage: record.StagePushing,
			Detail: where("pushed again what the registry had lost: "+strings.Join(res.Repaired, ", "), res)})
	}
	switch {
	case r.o.DryRun:
		p.Status = record.StagePlanned
	case p.Unchanged:
		p.Status = record.StageUnchanged
	default:
		p.Status = record.StageDone
	}
	if several {
		r.events(Event{Agent: a.name(), Stage: p.Status, Detail: where(res.Index.String(), res)})
	}
	return p
}

// imagesIn are an agent's image records as they are in the repository of
// res: copies whose Ref is there, for signing in that registry. The first
// registry's signature is the one an image's own record keeps.
func imagesIn(a *agent, res *publish.Result) []*record.Image {
	repo := res.Ref.Context()
	out := make([]*record.Image, len(a.Platforms))
	for i, img := range a.Platforms {
		at := *img
		at.Ref = repo.Digest(img.Digest.String())
		out[i] = &at
	}
	return out
}

// signEverything signs each per-arch image, then the index, in the
// registry of res.
func (r *run) signEverything(ctx context.Context, a *agent, res *publish.Result) (bool, *record.Signing, error) {
	wrote := false
	images := imagesIn(a, res)
	for i, at := range images {
		if err := r.o.Signer.SignImage(ctx, at); err != nil {
			return false, nil, err
		}
		if a.Platforms[i].Signature == nil {
			a.Platforms[i].Signature = at.Signature
		}
		wrote = wrote || at.Signature != nil && len(at.Signature.Added) > 0
	}
	return r.signIndex(ctx, res, images, wrote)
}

// signIndex signs the index of res, whose images are signed already, and
// says whether anything was written (wrote: the images' signing did).
func (r *run) signIndex(ctx context.Context, res *publish.Result, images []*record.Image, wrote bool) (bool, *record.Signing, error) {
	signing, err := r.o.Signer.SignIndex(ctx, res.Ref, images)
	if err != nil {
		return false, nil, err
	}
	return wrote || len(signing.Index.Added) > 0, signing, nil
}
