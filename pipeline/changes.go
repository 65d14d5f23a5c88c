package pipeline

import (
	"context"
	"fmt"

	"github.com/nothingnesses/agent-images/changes"
	"github.com/nothingnesses/agent-images/record"
)

// compare records what changed from the release latest named in the
// first registry before this run moved any tag (read when planning) to the
// index this run published, once the index and its images are signed, so
// that their SBOMs and provenance can be read. Nothing when there is
// nothing to compare: nothing pushed (a layout), no release before, no
// index published (a failure, a dry run), or latest already named this
// index. A comparison that fails is a note, not a failure.
func (r *run) compare(ctx context.Context, a *agent) {
	if !r.pushes() || r.o.DryRun || a.reuse || a.Failed() || a.Index.Hex == "" {
		return
	}
	if a.readErr != nil {
		r.note(a, fmt.Sprintf("what changed is not reported: %v", a.readErr))
		return
	}
	if len(a.published) == 0 || a.published[0] == nil || a.published[0].Index == a.Index {
		return
	}
	before := a.published[0].Ref
	// What this run published is in memory: only the attestations of its
	// images are read, until the signer hands over the ones it made.
	after := changes.Release{Ref: before.Context().Digest(a.Index.String()), Version: a.Version}
	for _, img := range a.Platforms {
		after.Images = append(after.Images, changes.Image{Platform: img.Platform, Digest: img.Digest, Size: img.Size})
	}
	rep, err := changes.Compare(ctx, changes.Release{Ref: before, Tag: "latest"}, after,
		changes.Options{Remote: r.client.Options(ctx), SizeThreshold: r.o.SizeThreshold})
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
