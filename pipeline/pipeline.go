// Package pipeline owns the order of a release: read the matrix, build every
// target, smoke-test every image, then per agent publish the per-arch images,
// the index, the signatures and, last, the tags. It also runs the two halves
// of a split release (build on native runners, merge in another job).
//
// Each per-arch image is one record.Image from start to end: build fills it,
// the smoke test adds its result, publishing where it went, signing its
// evidence, and the report lists the same records. An agent whose build or
// smoke test fails is not published at all; the other agents go on.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"golang.org/x/sync/errgroup"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/internal/pullsize"
	"github.com/nothingnesses/agent-images/publish"
	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/sign"
	"github.com/nothingnesses/agent-images/smoke"
)

// Options describe one release as the caller chose it. Release, BuildStaged
// and Merge read them and never change them; what a run works out while it
// runs is its own.
type Options struct {
	Flake flake.Flake
	// Agents and Systems select targets; empty means all.
	Agents  []string
	Systems []flake.System
	// Jobs is how many targets are built, tested and pushed at once
	// (default: the number of CPUs).
	Jobs int
	// WorkDir holds out-links and archives (default ./dist/work).
	WorkDir string

	// Push sends a Release to each of Registries (repository prefixes: each
	// agent goes to <prefix>/<agent> in every one, in order, and one
	// failing fails only that one); without it the release lands in
	// LayoutDir (default ./dist/oci). BuildStaged stages in the first
	// registry only, and Merge takes its parts from there and copies them
	// to the others.
	Push       bool
	Registries []string
	Insecure   bool
	LayoutDir  string

	// Runtime names the container runtime for smoke tests: "podman",
	// "docker", "" for the first that works, or "none" for static checks only.
	Runtime string

	// Source and Commit describe this repository, for annotations, provenance
	// and the sha-<short> tag; Commit may be empty when unknown.
	Source string
	Commit string
	// Run is the GitHub Actions run and attempt a split build runs in, for
	// its build record: merge takes the newest attempt of a re-run.
	Run *record.Run
	// SourceTime is when the source was committed. It is recorded on every
	// index and, with the version, orders releases so that no shared tag
	// moves backwards. Zero reads the flake's lastModified time.
	SourceTime time.Time
	// Metadata is what `nix flake metadata` said of Flake, read once by the
	// caller, which signs with its lock too; nil reads it.
	Metadata *flake.Metadata
	// ExtraTags are moved along with the standard ones.
	ExtraTags []string
	// GitTag is the git tag being released (v1.2.3): tagged itself, with a
	// semantic version's series (see publish.TagPolicy).
	GitTag string
	// Preview is the pull request a preview release is of: it moves
	// pr-<N> alone.
	Preview int
	// StagingKey names the split-mode staging tags (default: derived from Commit).
	StagingKey string
	// From is the build records Merge accepts parts from: the --output file
	// of `release build`, or a directory of them.
	From string

	// DryRun builds and tests, then shows what would be published and which
	// tags would move, changing nothing in any registry or layout.
	DryRun bool
	// AllowRollback moves latest, the version and the date tag even to an
	// index older than the one they point at: a deliberate revert.
	AllowRollback bool
	// Rebuild builds and publishes every selected agent, even one whose
	// published index was built from the derivations this run evaluates
	// (by default that index is the release again, and nothing is built).
	Rebuild bool

	// SizeThreshold flags, in the change report, every platform that grew
	// by more than this fraction of its size in the release latest named
	// before (0.1 is 10%); nil flags none.
	SizeThreshold *float64

	// Signer signs what is pushed, before any tag moves. Pushing needs one:
	// sign.New(ctx, sign.Disabled()) publishes unsigned, on purpose.
	Signer sign.Signer
	// Events receives progress; nil discards it.
	Events func(Event)
	// Now is the clock for the date tag (default time.Now).
	Now func() time.Time
}

// Event is one step of progress for a person watching.
type Event struct {
	Agent  string
	System string // empty for agent-wide steps
	Stage  record.Stage
	Detail string
	// Bytes pushed so far and in all, while pushing.
	Complete, Total int64
}

// mode is which entry point a run serves.
type mode int

const (
	modeRelease mode = iota
	modeBuild
	modeMerge
	// modeChanged only reads: which agents a split release must build.
	modeChanged
)

// run is one release in progress: the caller's options with their defaults,
// and what the run has worked out.
type run struct {
	o      Options
	mode   mode
	jobs   int
	now    time.Time
	events func(Event)
	// prefixes are the registries, whenever the run uses them.
	prefixes []publish.Prefix
	// runtime runs container smoke tests; nil for static checks only.
	runtime smoke.Runtime
	// smoke is false when nothing is smoke-tested (a dry run, a merge).
	smoke bool
	// allAgents is every agent of the flake's release set, selected or not.
	allAgents  []string
	sourceTime time.Time
	// targets are what the flake says of each image, by record.Image.String.
	targets map[string]flake.Target
	// inputs is how the flake's inputs are locked for this run.
	inputs map[string]record.Input
}

// lockedInputs is how meta's lock pins each input, as records name it.
func lockedInputs(meta *flake.Metadata) map[string]record.Input {
	out := make(map[string]record.Input, len(meta.Inputs))
	for path, in := range meta.Inputs {
		out[path] = record.Input{Rev: in.Rev, NarHash: in.NarHash}
	}
	return out
}

var stagingKeyRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$`)

// newRun checks every option before anything is evaluated, built or
// pushed: a bad flag fails here, never half way through a release.
func newRun(o Options, m mode) (*run, error) {
	r := &run{o: o, mode: m, jobs: o.Jobs, now: time.Now(), events: o.Events, targets: map[string]flake.Target{}}
	if o.Now != nil {
		r.now = o.Now()
	}
	if r.events == nil {
		r.events = func(Event) {}
	}
	if r.jobs == 0 {
		r.jobs = runtime.NumCPU()
	}
	var errs []error
	if r.jobs < 1 {
		errs = append(errs, fmt.Errorf("--jobs %d: want at least 1", o.Jobs))
	}
	if r.pushes() {
		if len(o.Registries) == 0 {
			errs = append(errs, fmt.Errorf("--registry: give the repository prefix agents are pushed under (for example ghcr.io/OWNER/REPO; under GitHub Actions the default is ghcr.io/<owner>/<repo>)"))
		}
		seen := map[string]bool{}
		for _, reg := range o.Registries {
			p, err := publish.ParsePrefix(reg, o.Insecure)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("--registry: %w", err))
			case seen[p.String()]:
				errs = append(errs, fmt.Errorf("--registry %s is given twice: name each registry once", p))
			default:
				seen[p.String()] = true
				r.prefixes = append(r.prefixes, p)
			}
		}
		if o.Signer == nil && !o.DryRun {
			errs = append(errs, errors.New("pushing needs a signer: pass --key or run keyless, or --sign=false to publish unsigned on purpose"))
		}
	}
	// The tags every agent shares are checked now; the version tag is
	// checked per agent once the flake is read, still before any build.
	if _, err := r.tagPolicy("").Tags(); err != nil {
		errs = append(errs, fmt.Errorf("tags: %w", err))
	}
	if m == modeBuild && !stagingKeyRE.MatchString(r.stagingKey()) {
		errs = append(errs, fmt.Errorf("--staging-key %q: want letters, digits, '_', '.' and '-', at most 64", r.stagingKey()))
	}
	if m == modeMerge && o.From == "" {
		errs = append(errs, errors.New("--from: give the build records of `release build` (its --output files, or a directory of them); merge accepts only the parts they name"))
	}
	switch o.Runtime {
	case "", "podman", "docker", "none":
	default:
		errs = append(errs, fmt.Errorf("--runtime %q: want podman, docker or none", o.Runtime))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	r.smoke = (m == modeRelease || m == modeBuild) && !o.DryRun
	if r.smoke && o.Runtime != "none" {
		rt, err := smoke.NewRuntime(o.Runtime)
		if err != nil {
			return nil, fmt.Errorf("smoke tests need a container runtime (or --runtime none for static checks only): %w", err)
		}
		r.runtime = rt
	}
	return r, nil
}

// tagPolicy is the tag policy of an agent at version.
func (r *run) tagPolicy(version string) publish.TagPolicy {
	return publish.TagPolicy{Version: version, Commit: r.o.Commit, Now: r.now, Extra: r.o.ExtraTags, GitTag: r.o.GitTag, Preview: r.o.Preview}
}

// pushes reports whether the run writes to a registry.
func (r *run) pushes() bool { return r.mode != modeRelease || r.o.Push }

func (r *run) workDir() string {
	if r.o.WorkDir == "" {
		return filepath.Join("dist", "work")
	}
	return r.o.WorkDir
}

func (r *run) layoutDir() string {
	if r.o.LayoutDir == "" {
		return filepath.Join("dist", "oci")
	}
	return r.o.LayoutDir
}

// stagingKey is the key split-mode builds and merges agree on.
func (r *run) stagingKey() string {
	if r.o.StagingKey != "" {
		return r.o.StagingKey
	}
	if len(r.o.Commit) >= 7 {
		return "sha-" + r.o.Commit[:7]
	}
	return "local"
}

// agent is one agent of a run: its part of the report, whose Platforms are
// its image records, and the tags it will move.
type agent struct {
	*record.Agent
	flake flake.Image
	tags  []publish.Tag
	// reuse is the published index that stands for the agent unchanged, as
	// each destination has it (in their order): set before anything is
	// built, and then nothing is.
	reuse []*publish.Published
}

func (a *agent) name() string { return a.Agent.Agent }

// plan reads the flake's release set and makes one record per selected
// target, grouped by agent in target order. An agent whose version gives no
// usable tag fails here, before it is built.
func (r *run) plan(ctx context.Context) ([]*agent, error) {
	all, err := flake.Load(ctx, r.o.Flake)
	if err != nil {
		return nil, err
	}
	r.allAgents = flake.Agents(all)
	targets, err := flake.Select(all, r.o.Agents, r.o.Systems)
	if err != nil {
		return nil, err
	}
	meta := r.o.Metadata
	if meta == nil {
		if meta, err = r.o.Flake.Metadata(ctx, flake.Run); err != nil {
			return nil, err
		}
	}
	r.inputs = lockedInputs(meta)
	r.sourceTime = r.o.SourceTime
	if r.sourceTime.IsZero() {
		r.sourceTime = meta.LastModified
	}
	return r.records(targets)
}

// records makes one record per target, grouped by agent in target order.
func (r *run) records(targets []flake.Target) ([]*agent, error) {
	var agents []*agent
	var err error
	by := map[string]*agent{}
	for _, t := range targets {
		a, ok := by[t.Agent]
		if !ok {
			a = &agent{Agent: &record.Agent{Agent: t.Agent, Version: t.Image.Version, Status: record.StagePlanned}, flake: t.Image}
			a.Created = r.sourceTime
			a.tags, err = r.tagPolicy(t.Image.Version).Tags()
			by[t.Agent] = a
			agents = append(agents, a)
		}
		p, perr := t.System.Platform()
		if perr != nil {
			return nil, perr
		}
		img := &record.Image{Agent: t.Agent, System: string(t.System), Platform: p, DrvPath: t.Image.DrvPath}
		r.targets[img.String()] = t
		if err != nil {
			img.Fail(fmt.Errorf("%s: %w", t, err))
		}
		a.Platforms = append(a.Platforms, img)
		r.events(Event{Agent: t.Agent, System: string(t.System), Stage: record.StagePlanned})
	}
	return agents, nil
}

// target is what the flake says of img.
func (r *run) target(img *record.Image) flake.Target { return r.targets[img.String()] }

// images lists every image record of agents.
func images(agents []*agent) []*record.Image {
	var out []*record.Image
	for _, a := range agents {
		out = append(out, a.Platforms...)
	}
	return out
}

// builder is the one Builder of a run: every image's layers are compressed
// once into its store.
func (r *run) builder() (*flake.Builder, error) {
	return flake.NewBuilder(
		flake.WithJobs(r.jobs),
		flake.WithWorkDir(r.workDir()),
		flake.WithProgress(func(e flake.Event) {
			ev := Event{Agent: e.Target.Agent, System: string(e.Target.System), Stage: record.StageBuilding}
			switch e.Stage {
			case "built":
				ev.Stage = record.StageBuilt
			case "failed":
				ev.Stage, ev.Detail = record.StageFailed, e.Err.Error()
			default:
				ev.Detail = e.Stage
			}
			r.events(ev)
		}))
}

// buildAndTest builds one image and smoke-tests it as soon as it is built.
func (r *run) buildAndTest(ctx context.Context, b *flake.Builder, img *record.Image) {
	if img.Failed() {
		return
	}
	built, err := b.Build(ctx, r.target(img))
	if err != nil {
		img.Fail(err)
		return
	}
	img.OutPath, img.Image, img.Digest = built.OutPath, built.Image, built.Digest
	if img.Size, err = pullsize.Of(built.Image); err != nil {
		img.Fail(fmt.Errorf("reading %s: %w", img, err))
		return
	}
	if r.smoke {
		r.test(ctx, img)
	}
}

// stream moves each image through perImage as soon as one of jobs workers
// is free, in target order (an agent's platforms one after the other), and
// each agent through perAgent as soon as the last of its images is
// through, while other images still build: nothing waits for the slowest
// agent. At most jobs agents are in perAgent at once. An agent with
// nothing to build (it failed in planning, or its published index stands
// for it) goes to perAgent at once.
func (r *run) stream(ctx context.Context, agents []*agent, perImage func(context.Context, *record.Image), perAgent func(context.Context, *agent)) {
	type pending struct {
		a    *agent
		left atomic.Int32
	}
	owner := map[*record.Image]*pending{}
	var queue []*record.Image
	var finished sync.WaitGroup
	slots := make(chan struct{}, r.jobs)
	finish := func(p *pending) {
		finished.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			perAgent(ctx, p.a)
		})
	}
	var ready []*pending
	for _, a := range agents {
		p := &pending{a: a}
		for _, img := range a.Platforms {
			if a.reuse == nil && !img.Failed() {
				owner[img] = p
				queue = append(queue, img)
				p.left.Add(1)
			}
		}
		if p.left.Load() == 0 {
			ready = append(ready, p)
		}
	}
	for _, p := range ready {
		finish(p)
	}
	next := make(chan *record.Image)
	var workers sync.WaitGroup
	for range min(r.jobs, max(len(queue), 1)) {
		workers.Go(func() {
			for img := range next {
				perImage(ctx, img)
				if p := owner[img]; p.left.Add(-1) == 0 {
					finish(p)
				}
			}
		})
	}
	for _, img := range queue {
		next <- img
	}
	close(next)
	workers.Wait()
	finished.Wait()
}

// test smoke-tests one built image and records the result; a failed check
// fails the image.
func (r *run) test(ctx context.Context, img *record.Image) {
	r.events(Event{Agent: img.Agent, System: img.System, Stage: record.StageTesting})
	opts := []smoke.Option{smoke.WithPlatform(img.Platform)}
	if r.runtime != nil {
		opts = append(opts, smoke.WithRuntime(r.runtime))
	}
	rep, err := smoke.Test(ctx, img.Image, smoke.ExpectOf(r.target(img).Image), opts...)
	img.Smoke = smoke.Brief(rep)
	switch {
	case err != nil:
		img.Fail(fmt.Errorf("smoke-testing %s: %w", img, err))
	case len(rep.Failed()) > 0:
		var errs []error
		for _, f := range rep.Failed() {
			errs = append(errs, fmt.Errorf("%s (%s)", f.Check, f.Detail))
		}
		img.Fail(fmt.Errorf("smoke test of %s failed: %w", img, errors.Join(errs...)))
	}
	if img.Failed() {
		r.events(Event{Agent: img.Agent, System: img.System, Stage: record.StageFailed, Detail: img.Error})
	} else {
		r.events(Event{Agent: img.Agent, System: img.System, Stage: record.StageTested, Detail: string(rep.Mode)})
	}
}

// registry is the publisher of this run to one registry. Every agent image
// shares its base layers, so a layer this run has not pushed there is
// offered for mounting from the repository of the release set's first
// agent (the second, for the first agent itself), where an earlier run or
// another job put it.
func (r *run) registry(prefix publish.Prefix) *publish.Registry {
	opts := []publish.RegistryOption{publish.WithProgress(r.pushProgress)}
	var siblings []name.Repository
	for _, a := range r.allAgents {
		if len(siblings) == 2 {
			break
		}
		if repo, err := prefix.Repository(a); err == nil {
			siblings = append(siblings, repo)
		}
	}
	return publish.NewRegistry(prefix, append(opts, publish.WithMountFrom(siblings...))...)
}

// registries are the publishers of every registry of the run, in order.
func (r *run) registries() []*publish.Registry {
	out := make([]*publish.Registry, len(r.prefixes))
	for i, p := range r.prefixes {
		out[i] = r.registry(p)
	}
	return out
}

// publishers are regs as what a release publishes through.
func publishers(regs []*publish.Registry) []publish.Publisher {
	out := make([]publish.Publisher, len(regs))
	for i, reg := range regs {
		out[i] = reg
	}
	return out
}

// registryNames are the run's registries as given.
func (r *run) registryNames() []string {
	out := make([]string, len(r.prefixes))
	for i, p := range r.prefixes {
		out[i] = p.String()
	}
	return out
}

func (r *run) pushProgress(p publish.Progress) {
	agent := filepath.Base(p.Repository)
	r.events(Event{Agent: agent, Stage: record.StagePushing, Complete: p.Complete, Total: p.Total})
}

// annotations are what the index says of where it came from.
func (r *run) annotations(a *agent) map[string]string {
	out := map[string]string{publish.AnnotationTitle: a.name()}
	if r.o.Source != "" {
		out[publish.AnnotationSource] = r.o.Source
	}
	if r.o.Commit != "" {
		out[publish.AnnotationRevision] = r.o.Commit
	}
	return out
}

// fail marks an agent failed with err and says so.
func (r *run) fail(a *agent, err error) {
	a.Status, a.Error = record.StageFailed, err.Error()
	r.events(Event{Agent: a.name(), Stage: record.StageFailed, Detail: a.Error})
}

// forEachAgent runs f for each agent, at most jobs at a time. Each agent
// writes only its own record, so the report keeps the targets' order.
func (r *run) forEachAgent(agents []*agent, f func(a *agent)) {
	var g errgroup.Group
	g.SetLimit(r.jobs)
	for _, a := range agents {
		g.Go(func() error { f(a); return nil })
	}
	_ = g.Wait()
}

func reportAgents(agents []*agent) []*record.Agent {
	out := make([]*record.Agent, len(agents))
	for i, a := range agents {
		out[i] = a.Agent
	}
	return out
}
