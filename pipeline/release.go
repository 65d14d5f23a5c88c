package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/nothingnesses/agent-images/publish"
	"github.com/nothingnesses/agent-images/record"
)

// Release runs the whole pipeline in this process: the release set and
// every derivation in one evaluation; per agent, nothing more when its
// published index was built from the same derivations; otherwise each image
// built and smoke-tested as soon as a worker is free, and the agent
// published, signed and tagged as soon as all its images passed. It returns
// a report even when some agents failed; the error is for failures that
// stop everything (the flake does not evaluate, an option is wrong).
func Release(ctx context.Context, o Options) (*record.Report, error) {
	r, err := newRun(o, modeRelease)
	if err != nil {
		return nil, err
	}
	agents, err := r.plan(ctx)
	if err != nil {
		return nil, err
	}
	b, err := r.builder()
	if err != nil {
		return nil, err
	}
	rep := &record.Report{Commit: o.Commit, DryRun: o.DryRun, Agents: reportAgents(agents)}
	var pubs []publish.Publisher
	if o.Push {
		rep.Registries = r.registryNames()
		rep.Registry = rep.Registries[0]
		pubs = publishers(r.registries())
	} else {
		rep.Layout = r.layoutDir()
		pubs = append(pubs, publish.NewLayout(rep.Layout))
	}
	r.forEachAgent(agents, func(a *agent) { r.checkUnchanged(ctx, pubs, a) })
	r.stream(ctx, agents,
		func(ctx context.Context, img *record.Image) { r.buildAndTest(ctx, b, img) },
		func(ctx context.Context, a *agent) { r.release(ctx, pubs, a) })
	return rep, nil
}

// checkUnchanged sets a.reuse when what every destination has under latest
// stands for the agent as it is now: the same index everywhere, listing the
// same platforms, each built from the derivation this run evaluated, each
// image still there, and, when the run signs, each carrying this signer's
// signature and attestations in that registry. Anything less (a registry
// added since, one that lost an image), or a read that fails, and the agent
// is built as usual: building is never wrong, only slower.
func (r *run) checkUnchanged(ctx context.Context, pubs []publish.Publisher, a *agent) {
	if r.o.Rebuild {
		return
	}
	for _, img := range a.Platforms {
		if img.Failed() {
			return
		}
	}
	where := func(i int) string {
		if r.o.Push {
			return r.prefixes[i].String()
		}
		return r.layoutDir()
	}
	var reuse []*publish.Published
	var err error
	for i, pub := range pubs {
		var p *publish.Published
		if p, err = r.unchangedIn(ctx, pub, a); err != nil {
			break
		}
		if p == nil {
			if len(reuse) > 0 {
				err = fmt.Errorf("%w: %s has no latest %s", publish.ErrChanged, where(i), a.name())
			}
			break
		}
		if len(reuse) > 0 && p.Index != reuse[0].Index {
			err = fmt.Errorf("%w: latest is %s in %s and %s in %s", publish.ErrChanged, reuse[0].Index, where(0), p.Index, where(i))
			break
		}
		reuse = append(reuse, p)
	}
	switch {
	case err != nil:
		if !errors.Is(err, publish.ErrChanged) {
			err = fmt.Errorf("building: reading what is published: %w", err)
		}
		r.events(Event{Agent: a.name(), Stage: record.StagePlanned, Detail: err.Error()})
		return
	case len(reuse) < len(pubs):
		// Never released here: nothing to compare with.
		return
	}
	reuse[0].Fill(a.Platforms)
	a.reuse, a.SameDerivation, a.Created = reuse, true, reuse[0].Created
	r.events(Event{Agent: a.name(), Stage: record.StagePlanned, Detail: "unchanged: same derivation, " + reuse[0].Index.String()})
}

// unchangedIn is the index latest names in pub when it stands for a as it
// is now, its images signed there when the run signs; nil when pub has no
// latest index; an error wrapping publish.ErrChanged for the first
// difference. a itself is left as it was: the agent may still be built.
func (r *run) unchangedIn(ctx context.Context, pub publish.Publisher, a *agent) (*publish.Published, error) {
	p, err := pub.Published(ctx, a.name())
	if err != nil || p == nil {
		return nil, err
	}
	if err := p.Matches(a.Platforms); err != nil {
		return nil, err
	}
	if r.o.Push && r.o.Signer != nil {
		for _, img := range a.Platforms {
			// Checked on a copy where pub has the image.
			at := *img
			p.Fill([]*record.Image{&at})
			if err := r.o.Signer.Check(ctx, &at); err != nil {
				return nil, fmt.Errorf("%w: %w", publish.ErrChanged, err)
			}
		}
	}
	return p, nil
}

// release publishes one agent whose images are through: its published
// index again when that stands for it, else what this run built, unless
// an image failed.
func (r *run) release(ctx context.Context, pubs []publish.Publisher, a *agent) {
	if a.reuse != nil {
		r.publish(ctx, pubs, a, func(ctx context.Context, a *agent, res *publish.Result) (bool, *record.Signing, error) {
			return r.signIndex(ctx, res, imagesIn(a, res), false)
		})
		return
	}
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
	// What changed is reported against what latest named in the first
	// destination before any tag moved. A reused index is what latest
	// named (checkUnchanged read it): there is nothing to report, nor to
	// ask the registry again.
	var before name.Digest
	if !r.o.DryRun && a.reuse == nil {
		before = r.latest(ctx, a)
	}
	for i, pub := range pubs {
		a.Published = append(a.Published, r.publishTo(ctx, i, pub, a, sign, len(pubs) > 1))
	}
	first := a.Published[0]
	a.Repository, a.Moved, a.Kept, a.Repaired, a.Signing = first.Repository, first.Moved, first.Kept, first.Repaired, first.Signing
	a.Tags = publish.Names(r.releaseOf(a, 0).Moving())
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
	r.compare(ctx, a, before)
	detail := a.Index.String()
	if a.Error != "" {
		detail = a.Error
	}
	r.events(Event{Agent: a.name(), Stage: a.Status, Detail: detail})
}

// publishTo publishes an agent to one destination: its images, index,
// signatures and tags there (or, in a dry run, what would be), and returns
// how that went. A failure here is this destination's alone.
func (r *run) publishTo(ctx context.Context, i int, pub publish.Publisher, a *agent, sign signer, several bool) *record.Publication {
	rel := r.releaseOf(a, i)
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
	// Put, sign, then move the tags: a tag never names what is not there
	// and signed.
	if !r.o.DryRun {
		r.events(Event{Agent: a.name(), Stage: record.StagePushing})
	}
	res, err := pub.Put(ctx, rel, r.o.DryRun)
	signed := false
	if err == nil && !r.o.DryRun && res.Ref.DigestStr() != "" {
		r.events(Event{Agent: a.name(), Stage: record.StageSigning, Detail: where("", res)})
		signed, p.Signing, err = sign(ctx, a, res)
		if err != nil {
			err = fmt.Errorf("before moving tags of %s: %w", res.Repository, err)
		}
	}
	var moves *publish.Moves
	if err == nil {
		if !r.o.DryRun {
			r.events(Event{Agent: a.name(), Stage: record.StageTagging, Detail: where("", res)})
		}
		moves, err = pub.MoveTags(ctx, rel, res.Index, r.o.DryRun)
	}
	if res != nil {
		p.Repository = res.Repository
		if res.Index.Hex != "" {
			a.Index = res.Index
		}
		p.Repaired = res.Repaired
		p.Unchanged = res.Unchanged && !signed
	}
	if moves != nil {
		p.Moved, p.Kept = moves.Moved, moves.Kept
	}
	if err != nil {
		p.Status, p.Error, p.Unchanged = record.StageFailed, err.Error(), false
		if several {
			r.events(Event{Agent: a.name(), Stage: record.StageFailed, Detail: where(p.Error, res)})
		}
		return p
	}
	for _, k := range moves.Kept {
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

// releaseOf is what publishing a gives the i-th destination.
func (r *run) releaseOf(a *agent, i int) publish.Release {
	rel := publish.Release{
		Agent:         a.name(),
		Images:        a.Platforms,
		Version:       a.Version,
		Created:       a.Created,
		Annotations:   r.annotations(a),
		Tags:          a.tags,
		AllowRollback: r.o.AllowRollback,
	}
	if a.reuse != nil {
		rel.Reuse = a.reuse[i]
	}
	return rel
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
		if err := r.o.Signer.SignImage(ctx, at, r.target(at).Image); err != nil {
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
