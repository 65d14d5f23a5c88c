package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/nothingnesses/agent-images/publish"
	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/sign"
	"github.com/nothingnesses/agent-images/tags"
)

// Release runs the whole pipeline in this process: the release set and
// every derivation in one evaluation; per agent, nothing more when its
// published index was built from the same derivations; otherwise each image
// built and smoke-tested as soon as a worker is free, and the agent put,
// signed and tagged as soon as all its images passed. It returns a report
// even when some agents failed; the error is for failures that stop
// everything (the flake does not evaluate, an option is wrong).
func Release(ctx context.Context, o Options) (*record.Report, error) {
	r, err := newRun(o, modeRelease)
	if err != nil {
		return nil, err
	}
	agents, err := r.start(ctx)
	if err != nil {
		return nil, err
	}
	rep := r.newReport(agents)
	r.do(ctx, agents)
	return rep, nil
}

// readPublished reads what each destination has under latest, once: the
// release a change report compares with, and what may stand for the agent
// unchanged (see unchanged). A read that fails, or any difference, and the
// agent is built as usual: building is never wrong, only slower.
func (r *run) readPublished(ctx context.Context, a *agent) error {
	a.published = make([]*publish.Published, len(r.dests))
	// Without reuse (a merge, --rebuild) only the first destination's is
	// wanted: it is what the change report compares with.
	reuse := !r.o.Rebuild && r.mode != modeMerge
	dests := r.dests
	if !reuse {
		dests = dests[:1]
	}
	var err error
	for i, pub := range dests {
		if a.published[i], err = pub.Published(ctx, a.name()); err != nil {
			if i == 0 {
				a.readErr = err
			}
			err = fmt.Errorf("building: reading what is published: %w", err)
			break
		}
	}
	if err == nil && reuse && !slices.ContainsFunc(a.Platforms, (*record.Image).Failed) {
		err = r.unchanged(ctx, a)
	}
	if err != nil {
		r.events(Event{Agent: a.name(), Stage: record.StagePlanned, Detail: err.Error()})
		return nil
	}
	if !a.reuse {
		return nil
	}
	p := a.published[0]
	for _, img := range a.Platforms {
		if pi, ok := p.Image(img.Platform); ok {
			img.Digest, img.Ref, img.Size = pi.Digest, pi.Ref, pi.Size
		}
	}
	a.SameDerivation, a.Created = true, p.Key.Created
	r.events(Event{Agent: a.name(), Stage: record.StagePlanned, Detail: "unchanged: same derivation, " + p.Index.String()})
	return nil
}

// unchanged sets a.reuse when every destination has the same index under
// latest, listing the same platforms, each built from the derivation this
// run evaluated, each image still there with all its blobs and, when the
// run signs, the index signed by this signer and each image carrying its
// signature and attestations, the provenance naming that derivation. The
// error, wrapping publish.ErrChanged, names the first difference (a
// registry added since, one that lost an image, an index someone else put
// there). Nowhere released yet is no difference: there is nothing to
// compare with.
func (r *run) unchanged(ctx context.Context, a *agent) error {
	first := a.published[0]
	if first == nil {
		return nil
	}
	for i, p := range a.published {
		switch {
		case p == nil:
			return fmt.Errorf("%w: %s has no latest %s", publish.ErrChanged, r.where(i), a.name())
		case p.Index != first.Index:
			return fmt.Errorf("%w: latest is %s in %s and %s in %s", publish.ErrChanged, first.Index, r.where(0), p.Index, r.where(i))
		}
		if err := p.Matches(a.Platforms); err != nil {
			return err
		}
		if !r.pushes() || r.o.Signer == nil {
			continue
		}
		// Only what this signer signed is reused: the index itself, and
		// each image with a signed provenance naming the derivation this
		// run evaluated. The index's annotations, which say the same, are
		// anyone's to write; an index that is not ours is never signed.
		if err := r.o.Signer.Signed(ctx, p.Ref); err != nil {
			r.note(a, fmt.Sprintf("latest in %s named %s, which this signer did not sign: not reused, never signed, replaced by this release", r.where(i), p.Index))
			return fmt.Errorf("%w: %w", publish.ErrChanged, err)
		}
		for _, img := range a.Platforms {
			pi, _ := p.Image(img.Platform) // Matches found it
			if err := r.o.Signer.Check(ctx, pi.Ref, sign.Built{Derivation: img.DrvPath, Platform: img.Platform.String()}); err != nil {
				return fmt.Errorf("%w: %w", publish.ErrChanged, err)
			}
		}
	}
	a.reuse = true
	return nil
}

// releaseOf is what publishing a gives the i-th destination.
func (r *run) releaseOf(a *agent, i int) publish.Release {
	rel := publish.Release{
		Agent:         a.name(),
		Images:        a.Platforms,
		Version:       a.Version,
		Created:       a.Created,
		Annotations:   map[string]string{publish.AnnotationTitle: a.name()},
		Tags:          a.tags,
		AllowRollback: r.o.AllowRollback,
	}
	if r.o.Source != "" {
		rel.Annotations[publish.AnnotationSource] = r.o.Source
	}
	if r.o.Commit != "" {
		rel.Annotations[publish.AnnotationRevision] = r.o.Commit
	}
	if a.reuse {
		rel.Reuse = a.published[i]
	}
	if r.pushes() && r.o.Signer != nil {
		rel.Ours = func(ctx context.Context, d name.Digest) bool { return r.o.Signer.Signed(ctx, d) == nil }
	}
	return rel
}

// put makes sure the agent's images and index are in each destination (in
// a dry run, finds out what that would take). An agent with an image that
// failed is not published at all. Each destination goes on its own from
// here: one failing fails only its own publication.
func (r *run) put(ctx context.Context, a *agent) error {
	if !a.reuse {
		var errs []error
		for _, img := range a.Platforms {
			if img.Failed() {
				errs = append(errs, img.Err)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("not published: %w", errors.Join(errs...))
		}
	}
	for i, pub := range r.dests {
		d := &destination{pub: pub, rel: r.releaseOf(a, i), rec: &record.Publication{}}
		a.dests = append(a.dests, d)
		if !r.o.DryRun {
			r.events(Event{Agent: a.name(), Stage: record.StagePushing})
		}
		res, err := pub.Put(ctx, d.rel, r.o.DryRun)
		if res != nil {
			d.res, d.rec.Repository, d.rec.Repaired = res, res.Repository, res.Repaired
			if res.Index.Hex != "" {
				a.Index = res.Index
			}
		}
		if err != nil {
			r.failIn(a, d, err)
			continue
		}
		if len(res.Repaired) > 0 {
			r.events(Event{Agent: a.name(), Stage: record.StagePushing,
				Detail: r.in(a, d, "pushed again what the registry had lost: "+strings.Join(res.Repaired, ", "))})
		}
	}
	return nil
}

// sign signs what put made sure of, in each registry it went to, before
// any tag there moves: every image and the index in one process; in a
// merge the index (and parts copied from the staging registry); for a
// reused index, what is not signed there yet.
func (r *run) sign(ctx context.Context, a *agent) error {
	if r.o.DryRun {
		return nil
	}
	for _, d := range a.dests {
		if d.failed() || d.res.Ref.DigestStr() == "" {
			continue
		}
		r.events(Event{Agent: a.name(), Stage: record.StageSigning, Detail: r.in(a, d, "")})
		images := imagesIn(a, d)
		wrote, err := r.signImages(ctx, a, d, images)
		if err == nil {
			d.rec.Signing, err = r.o.Signer.SignIndex(ctx, d.res.Ref, images)
		}
		if err != nil {
			r.failIn(a, d, fmt.Errorf("before moving tags of %s: %w", d.res.Repository, err))
			continue
		}
		d.signed = wrote || len(d.rec.Signing.Index.Added) > 0
	}
	return nil
}

// imagesIn are where an agent's images are in d's repository, for signing
// in that registry.
func imagesIn(a *agent, d *destination) []name.Digest {
	repo := d.res.Ref.Context()
	out := make([]name.Digest, len(a.Platforms))
	for i, img := range a.Platforms {
		out[i] = repo.Digest(img.Digest.String())
	}
	return out
}

// signImages signs each per-arch image in d and says whether that wrote
// anything; the first registry's signature is the one an image's own
// record keeps. A reused index's images are signed already, and so are a
// merge's where they were staged (by their build jobs, and checked). In a
// merge's other registries each part is signed there too, gets the
// attestations its build job made (the Signer found them in Check), and
// must pass the same Check there.
func (r *run) signImages(ctx context.Context, a *agent, d *destination, images []name.Digest) (bool, error) {
	copied := r.mode == modeMerge && d.pub != r.dests[0]
	if a.reuse || r.mode == modeMerge && !copied {
		return false, nil
	}
	wrote := false
	for i, at := range images {
		img := a.Platforms[i]
		sig, err := r.o.Signer.SignImage(ctx, at, img, r.target(img).Image)
		if err != nil {
			return false, err
		}
		if copied {
			if err := r.o.Signer.Check(ctx, at, r.built(img)); err != nil {
				staged, _ := r.prefixes[0].Repository(a.name()) // records failed an agent no registry can hold
				return false, fmt.Errorf("part %s (%s) copied from %s refused: %w", img, img.Platform, staged, err)
			}
		} else if img.Signature == nil {
			img.Signature = sig
		}
		wrote = wrote || sig != nil && len(sig.Added) > 0
	}
	return wrote, nil
}

// tag moves the agent's tags in each destination whose put and signing
// went through, none of them backwards, last.
func (r *run) tag(ctx context.Context, a *agent) error {
	for _, d := range a.dests {
		if d.failed() {
			continue
		}
		if !r.o.DryRun {
			r.events(Event{Agent: a.name(), Stage: record.StageTagging, Detail: r.in(a, d, "")})
		}
		moves, err := d.pub.MoveTags(ctx, d.rel, d.res.Index, r.o.DryRun)
		if err != nil {
			r.failIn(a, d, err)
			continue
		}
		d.rec.Moved, d.rec.Kept = moves.Moved, moves.Kept
		for _, k := range moves.Kept {
			r.events(Event{Agent: a.name(), Stage: record.StageTagging,
				Detail: r.in(a, d, fmt.Sprintf("%s stays at %s, which is newer (%s, version %s)", k.Tag, k.Index, k.Created.Format(time.RFC3339), k.Version))})
		}
		d.rec.Unchanged = d.res.Unchanged && !d.signed
		d.rec.Status = r.outcome(d.rec.Unchanged)
		if len(a.dests) > 1 {
			r.events(Event{Agent: a.name(), Stage: d.rec.Status, Detail: r.in(a, d, d.res.Index.String())})
		}
	}
	return nil
}

// report sums an agent's publications up: done only when every
// destination is. The agent-wide fields are those of the first
// destination. Then what changed since latest is recorded.
func (r *run) report(ctx context.Context, a *agent) error {
	var errs []string
	a.Unchanged = true
	for _, d := range a.dests {
		a.Published = append(a.Published, d.rec)
		a.Unchanged = a.Unchanged && d.rec.Unchanged
		if d.failed() {
			if len(a.dests) > 1 {
				errs = append(errs, d.rec.Repository+": "+d.rec.Error)
			} else {
				errs = append(errs, d.rec.Error)
			}
		}
	}
	first := a.Published[0]
	a.Repository, a.Moved, a.Kept, a.Repaired, a.Signing = first.Repository, first.Moved, first.Kept, first.Repaired, first.Signing
	a.Tags = tags.Names(r.releaseOf(a, 0).Moving())
	a.Status = r.outcome(a.Unchanged)
	if len(errs) > 0 {
		a.Status, a.Error = record.StageFailed, strings.Join(errs, "; ")
	}
	r.compare(ctx, a)
	detail := a.Index.String()
	if a.Error != "" {
		detail = a.Error
	}
	r.events(Event{Agent: a.name(), Stage: a.Status, Detail: detail})
	return nil
}

// outcome is how a publication that went through ended.
func (r *run) outcome(unchanged bool) record.Stage {
	switch {
	case r.o.DryRun:
		return record.StagePlanned
	case unchanged:
		return record.StageUnchanged
	}
	return record.StageDone
}

// failIn records that publishing a in d failed.
func (r *run) failIn(a *agent, d *destination, err error) {
	d.rec.Status, d.rec.Error, d.rec.Unchanged = record.StageFailed, err.Error(), false
	if len(a.dests) > 1 || len(r.dests) > 1 {
		r.events(Event{Agent: a.name(), Stage: record.StageFailed, Detail: r.in(a, d, d.rec.Error)})
	}
}

// in is detail about d, naming d when the agent goes to several places.
func (r *run) in(a *agent, d *destination, detail string) string {
	if len(r.dests) < 2 || d.rec.Repository == "" {
		return detail
	}
	if detail == "" {
		return d.rec.Repository
	}
	return d.rec.Repository + ": " + detail
}
