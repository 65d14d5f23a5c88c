package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/nothingnesses/agent-images/changes"
	"github.com/nothingnesses/agent-images/record"
)

// latest is the index the agent's latest tag names in its (first)
// registry repository before this run moves any tag: the release this one is
// compared with. Zero when nothing is pushed (a layout), there is no latest
// yet, or it cannot be read; the last is a note on the agent, since what
// changed is worth reporting but never worth failing a release for.
func (r *run) latest(ctx context.Context, a *agent) name.Digest {
	if !r.pushes() {
		return name.Digest{}
	}
	repo, err := r.prefixes[0].Repository(a.name())
	if err != nil {
		return name.Digest{}
	}
	d, err := changes.Resolve(ctx, repo.Tag("latest"))
	var te *transport.Error
	switch {
	case errors.As(err, &te) && te.StatusCode == http.StatusNotFound:
		return name.Digest{}
	case err != nil:
		r.note(a, fmt.Sprintf("what changed is not reported: %v", err))
		return name.Digest{}
	}
	return d
}

// compare records what changed from the release before (latest, read by
// latest) to the index this run published, once the index and its images
// are signed, so that their SBOMs and provenance can be read. Nothing when
// there is nothing to compare: no release before, no index published (a
// failure, a dry run), or latest already named this index. A comparison
// that fails is a note, not a failure.
func (r *run) compare(ctx context.Context, a *agent, before name.Digest) {
	if before.DigestStr() == "" || a.Failed() || a.Index.Hex == "" || before.DigestStr() == a.Index.String() {
		return
	}
	var opts []changes.Option
	if r.o.SizeThreshold != nil {
		opts = append(opts, changes.WithSizeThreshold(*r.o.SizeThreshold))
	}
	after := before.Context().Digest(a.Index.String())
	rep, err := changes.Compare(ctx, before, after, append(opts, changes.WithTags("latest", ""))...)
	if err != nil {
		r.note(a, fmt.Sprintf("what changed since latest (%s) is not reported: %v", before.DigestStr(), err))
		return
	}
	a.Changes = rep
	detail := "since latest: " + rep.Headline()
	for _, p := range rep.OverThreshold() {
		detail += fmt.Sprintf("; %s grew %s, over %s", p.Platform, p.SizeChange(), rep.ThresholdString())
	}
	r.events(Event{Agent: a.name(), Stage: record.StageTagging, Detail: detail})
}

// note records on the agent what its release could not do, and says so.
func (r *run) note(a *agent, msg string) {
	a.Notes = append(a.Notes, msg)
	r.events(Event{Agent: a.name(), Stage: a.Status, Detail: msg})
}
