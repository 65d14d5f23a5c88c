package pipeline

import (
	"context"
	"fmt"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/publish"
	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/tags"
)

// Unchanged is what a split release can leave out of its matrix: of the
// targets (from flake.Load, with their derivations), each agent whose
// index in the registry stands for it exactly as Release would find it
// (same derivations, every image there and signed by Options.Signer) and
// onto which no tag has to move. Such an agent needs no build, merge or
// write at all; its record, status unchanged, is returned, in target order.
// Nothing is evaluated, built or written.
func Unchanged(ctx context.Context, o Options, targets []flake.Target) ([]*record.Agent, error) {
	r, err := newRun(o, modeChanged)
	if err != nil {
		return nil, err
	}
	agents, err := r.startWith(targets, targets)
	if err != nil {
		return nil, err
	}
	r.do(ctx, agents)
	var out []*record.Agent
	for _, a := range agents {
		if a.reuse {
			out = append(out, a.Agent)
		}
	}
	return out, nil
}

// planTags keeps an unchanged agent out of the build only when no tag has
// to move onto its index in any registry.
func (r *run) planTags(ctx context.Context, a *agent) error {
	if !a.reuse {
		return nil
	}
	for i, pub := range r.dests {
		rel := r.releaseOf(a, i)
		res, err := pub.Put(ctx, rel, true)
		var moves *publish.Moves
		if err == nil {
			moves, err = pub.MoveTags(ctx, rel, res.Index, true)
		}
		switch {
		case err != nil:
			a.reuse = false
			r.events(Event{Agent: a.name(), Stage: record.StagePlanned, Detail: fmt.Sprintf("building: planning its tags: %v", err)})
			return nil
		case len(moves.Moved) > 0:
			a.reuse = false
			r.events(Event{Agent: a.name(), Stage: record.StagePlanned, Detail: fmt.Sprintf("building: tags %v must move in %s", moves.Moved, res.Repository)})
			return nil
		}
		a.Published = append(a.Published, &record.Publication{Repository: res.Repository, Kept: moves.Kept, Unchanged: true, Status: record.StageUnchanged})
		if i == 0 {
			a.Repository, a.Index, a.Tags, a.Kept = res.Repository, res.Index, tags.Names(rel.Moving()), moves.Kept
		}
	}
	a.Unchanged, a.Status = true, record.StageUnchanged
	return nil
}
