package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/nothingnesses/agent-images/internal/pullsize"
	"github.com/nothingnesses/agent-images/publish"
	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/sign"
)

// BuildStaged is the first half of a split release, run once per system on
// a native runner: build and smoke-test the selected targets, push each
// per-arch image that passed by digest, point its staging tag at it, and
// sign and attest it here, in the job that built it. No index or release tag
// moves. The build record it returns is what Merge accepts parts from.
//
// With several registries the parts are staged in the first only: a build
// job then depends on one registry, and a second one failing can fail only
// its own merge, never the build. Merge copies accepted parts to the others.
func BuildStaged(ctx context.Context, o Options) (*record.Build, error) {
	r, err := newRun(o, modeBuild)
	if err != nil {
		return nil, err
	}
	agents, err := r.start(ctx)
	if err != nil {
		return nil, err
	}
	rec := &record.Build{
		Schema:     record.BuildSchema,
		Commit:     o.Commit,
		StagingKey: r.stagingKey(),
		Registry:   r.prefixes[0].String(),
		DryRun:     o.DryRun,
		Inputs:     r.inputs,
		Run:        o.Run,
	}
	for _, a := range agents {
		rec.Images = append(rec.Images, a.Platforms...)
	}
	// Each image is pushed and signed as soon as it passed, while the
	// others still build.
	r.do(ctx, agents)
	return rec, nil
}

// stage pushes one tested image to the first registry under its staging
// tag and signs it there.
func (r *run) stage(ctx context.Context, img *record.Image) error {
	if r.o.DryRun {
		return nil
	}
	r.events(Event{Agent: img.Agent, System: img.System, Stage: record.StagePushing})
	ref, err := r.dests[0].(*publish.Registry).Stage(ctx, img, r.stagingKey())
	if err != nil {
		return err
	}
	img.Ref = ref
	r.events(Event{Agent: img.Agent, System: img.System, Stage: record.StageSigning})
	if img.Signature, err = r.o.Signer.SignImage(ctx, img.Ref, img, r.target(img).Image); err != nil {
		return err
	}
	r.events(Event{Agent: img.Agent, System: img.System, Stage: record.StageDone, Detail: img.Ref.String()})
	return nil
}

// Merge is the second half of a split release. For every selected agent it
// takes each per-arch image from the build records in Options.From, and
// accepts it only when it is what this flake builds (same commit, same
// derivation), the registry holds that very digest under its staging tag,
// and its signature and attestations verify against the identity this
// release signs with. Then it pushes the index, signs the index (its images
// were signed where they were built) and moves the tags as Release does. An
// agent with any part refused moves nothing, and the error names the part.
//
// Parts are staged in the first registry. Each other registry gets the
// accepted parts copied by digest, each signed there and given the
// attestations its build job made, and checked there as it was where it
// was staged, before its index is pushed and signed and its tags move:
// every registry is published on its own, as in Release.
func Merge(ctx context.Context, o Options) (*record.Report, error) {
	r, err := newRun(o, modeMerge)
	if err != nil {
		return nil, err
	}
	builds, err := record.ReadBuilds(o.From)
	if err != nil {
		return nil, err
	}
	agents, err := r.start(ctx)
	if err != nil {
		return nil, err
	}
	r.parts = map[string][]part{}
	for _, b := range builds {
		for _, img := range b.Images {
			r.parts[img.String()] = append(r.parts[img.String()], part{build: b, image: img})
		}
	}
	rep := r.newReport(agents)
	r.do(ctx, agents)
	return rep, nil
}

// acceptParts takes each of the agent's images from the build records; an
// agent with any part refused moves nothing, and the error names the part.
func (r *run) acceptParts(ctx context.Context, a *agent) error {
	var errs []error
	for i, want := range a.Platforms {
		if want.Failed() {
			errs = append(errs, want.Err)
			continue
		}
		got, err := r.accept(ctx, r.dests[0].(*publish.Registry), want, r.parts[want.String()])
		if err != nil {
			err = fmt.Errorf("part %s (%s) refused: %w", want, want.Platform, err)
			want.Fail(err)
			errs = append(errs, err)
			r.events(Event{Agent: want.Agent, System: want.System, Stage: record.StageFailed, Detail: err.Error()})
			continue
		}
		a.Platforms[i] = got
		r.events(Event{Agent: want.Agent, System: want.System, Stage: record.StageBuilt, Detail: "accepted " + got.Ref.String()})
	}
	if len(errs) > 0 {
		return fmt.Errorf("nothing moved: %w", errors.Join(errs...))
	}
	return nil
}

// built is what the signed provenance of a part must say: the derivation
// this run evaluated, this commit and the platform. The record's digest
// alone proves nothing: another image signed by the same identity could
// stand there.
func (r *run) built(want *record.Image) sign.Built {
	return sign.Built{Derivation: want.DrvPath, Commit: r.o.Commit, Platform: want.Platform.String()}
}

// part is one image of a build record.
type part struct {
	build *record.Build
	image *record.Image
}

// accept returns the record of the part want, as a build job recorded it,
// when it holds up; the error says why not.
func (r *run) accept(ctx context.Context, reg *publish.Registry, want *record.Image, parts []part) (*record.Image, error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("no build record in %s names it: build it on a %s runner (release build) and pass its record", r.o.From, want.System)
	}
	// A re-run's build job writes a new record beside the failed one.
	builds := make([]*record.Build, len(parts))
	for i, p := range parts {
		builds[i] = p.build
	}
	newest, err := record.Newest(builds)
	if err != nil {
		return nil, err
	}
	p := parts[slices.Index(builds, newest)]
	b, got := p.build, *p.image
	inputs := inputsDiffer(b.Inputs, r.inputs)
	switch {
	case got.Failed():
		return nil, fmt.Errorf("its build failed: %s", got.Error)
	case b.DryRun:
		return nil, errors.New("its build record is of a dry run, which pushed nothing")
	case b.Commit != r.o.Commit:
		return nil, fmt.Errorf("it was built from commit %q, this merge is of %q", b.Commit, r.o.Commit)
	case inputs != "":
		return nil, fmt.Errorf("it was built from other inputs than this merge evaluates (%s): every job of a release must build from the same committed flake.lock, with the same --override-input; rerun the build jobs from this commit", inputs)
	case b.Registry != r.prefixes[0].String():
		return nil, fmt.Errorf("it was staged in %s, this merge takes its parts from %s (the first --registry)", b.Registry, r.prefixes[0])
	case got.Platform.String() != want.Platform.String():
		return nil, fmt.Errorf("its record says platform %s", got.Platform)
	case got.DrvPath != want.DrvPath:
		// want's derivation is from this merge's one evaluation.
		return nil, fmt.Errorf("it was built from %s, this flake builds %s", got.DrvPath, want.DrvPath)
	case got.Digest.Hex == "":
		return nil, errors.New("its build record has no digest")
	}
	staged, tag, ok, err := reg.Staged(ctx, want.Agent, b.StagingKey, want.Platform)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, fmt.Errorf("nothing is staged at %s", tag)
	case staged != got.Digest:
		return nil, fmt.Errorf("%s points at %s, but the build record says %s: the staged image was replaced after it was built", tag, staged, got.Digest)
	}
	got.Ref = tag.Context().Digest(got.Digest.String())
	if got.Image, err = reg.Image(ctx, got.Ref); err != nil {
		return nil, err
	}
	if err := checkImage(got.Image, want.Platform, r.target(want).Image.Version); err != nil {
		return nil, fmt.Errorf("%s: %w", got.Ref, err)
	}
	// The size a pull downloads is the image's, whatever the record says.
	if got.Size, err = pullsize.Of(got.Image); err != nil {
		return nil, fmt.Errorf("%s: %w", got.Ref, err)
	}
	got.Err = nil
	if r.o.Signer != nil {
		if err := r.o.Signer.Check(ctx, got.Ref, r.built(want)); err != nil {
			return nil, err
		}
	}
	return &got, nil
}

// checkImage rejects an image for another platform or for another version
// of the agent than the flake has now.
func checkImage(img v1.Image, p v1.Platform, version string) error {
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	if cf.OS != p.OS || cf.Architecture != p.Architecture {
		return fmt.Errorf("it is %s/%s, want %s", cf.OS, cf.Architecture, p)
	}
	if got := cf.Config.Labels[publish.AnnotationVersion]; got != version {
		return fmt.Errorf("it has version %q, the flake has %q", got, version)
	}
	return nil
}

// inputsDiffer names the first input, in path order, that built and merged
// lock differently, or is "" when they agree.
func inputsDiffer(built, merged map[string]record.Input) string {
	paths := slices.AppendSeq(slices.Collect(maps.Keys(merged)), maps.Keys(built))
	slices.Sort(paths)
	for _, p := range slices.Compact(paths) {
		b, inBuild := built[p]
		m, inMerge := merged[p]
		switch {
		case !inBuild:
			return fmt.Sprintf("input %s is %s here and was not locked for the build", p, m)
		case !inMerge:
			return fmt.Sprintf("input %s was %s for the build and is not locked here", p, b)
		case b.NarHash != m.NarHash:
			return fmt.Sprintf("input %s was %s for the build and is %s here", p, b, m)
		}
	}
	return ""
}
