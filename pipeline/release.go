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
	var pub publish.Publisher
	if o.Push {
		rep.Registry = r.prefix.String()
		pub = r.registry()
	} else {
		rep.Layout = r.layoutDir()
		pub = publish.NewLayout(rep.Layout)
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
		r.publish(ctx, pub, a, r.signEverything)
	})
	return rep, nil
}

// signer is what a hook signs of an agent once its images and index are
// pushed: everything in one process, only the index in a merge. It reports
// whether it wrote anything.
type signer func(ctx context.Context, a *agent, res *publish.Result) (bool, error)

// publish sends an agent's tested images to pub (images, index, signatures,
// tags) and completes its report.
func (r *run) publish(ctx context.Context, pub publish.Publisher, a *agent, sign signer) {
	rel := publish.Release{
		Agent:         a.name(),
		Images:        a.Platforms,
		Version:       a.Version,
		Created:       a.Created,
		Annotations:   r.annotations(a),
		Tags:          a.tags,
		AllowRollback: r.o.AllowRollback,
	}
	var res *publish.Result
	var err error
	var before name.Digest
	signed := false
	if r.o.DryRun {
		res, err = pub.Plan(ctx, rel)
	} else {
		before = r.latest(ctx, a)
		r.events(Event{Agent: a.name(), Stage: record.StagePushing})
		res, err = pub.Publish(ctx, rel, func(ctx context.Context, res *publish.Result) error {
			if res.Ref.DigestStr() != "" {
				r.events(Event{Agent: a.name(), Stage: record.StageSigning})
				wrote, err := sign(ctx, a, res)
				if err != nil {
					return err
				}
				signed = wrote
			}
			r.events(Event{Agent: a.name(), Stage: record.StageTagging})
			return nil
		})
	}
	if res != nil {
		a.Repository = res.Repository
		a.Index = res.Index
		a.Tags = res.Tags
		a.Moved = res.Moved
		a.Kept = res.Kept
		a.Repaired = res.Repaired
		a.Unchanged = res.Unchanged && !signed
	}
	if err != nil {
		r.fail(a, err)
		return
	}
	for _, k := range res.Kept {
		r.events(Event{Agent: a.name(), Stage: record.StageTagging,
			Detail: fmt.Sprintf("%s stays at %s, which is newer (%s, version %s)", k.Tag, k.Index, k.Created.Format("2006-01-02T15:04:05Z07:00"), k.Version)})
	}
	if len(res.Repaired) > 0 {
		r.events(Event{Agent: a.name(), Stage: record.StagePushing,
			Detail: "pushed again what the registry had lost: " + strings.Join(res.Repaired, ", ")})
	}
	r.compare(ctx, a, before)
	switch {
	case r.o.DryRun:
		a.Status = record.StagePlanned
	case a.Unchanged:
		a.Status = record.StageUnchanged
	default:
		a.Status = record.StageDone
	}
	r.events(Event{Agent: a.name(), Stage: a.Status, Detail: res.Index.String()})
}

// signEverything signs each per-arch image, then the index.
func (r *run) signEverything(ctx context.Context, a *agent, res *publish.Result) (bool, error) {
	wrote := false
	for _, img := range a.Platforms {
		if err := r.o.Signer.SignImage(ctx, img); err != nil {
			return false, err
		}
		wrote = wrote || img.Signature != nil && len(img.Signature.Added) > 0
	}
	indexWrote, err := r.signIndex(ctx, a, res)
	return wrote || indexWrote, err
}

// signIndex signs the index alone: its images were signed where they were built.
func (r *run) signIndex(ctx context.Context, a *agent, res *publish.Result) (bool, error) {
	signing, err := r.o.Signer.SignIndex(ctx, res.Ref, a.Platforms)
	if err != nil {
		return false, err
	}
	a.Signing = signing
	return len(signing.Index.Added) > 0, nil
}
