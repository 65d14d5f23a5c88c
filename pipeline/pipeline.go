// Package pipeline owns the order of a release. Each mode (Release, and the
// two halves of a split release, BuildStaged and Merge) is a flow: a list of
// steps every agent goes through before anything is built, a list every
// image goes through as soon as a worker is free, and a list every agent goes
// through once all its images are through. The flows are declared in one
// place (flows, below) and read top to bottom.
//
// The pipeline is the one writer of the release record: the steps call the
// flake, smoke, publish and sign packages, which return values, and record
// what they returned. An image or agent that a step fails leaves its flow;
// the others go on.
package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"golang.org/x/sync/errgroup"

	"github.com/nothingnesses/agent-images/flake"
	"github.com/nothingnesses/agent-images/internal/pullsize"
	"github.com/nothingnesses/agent-images/internal/transport"
	"github.com/nothingnesses/agent-images/publish"
	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/sign"
	"github.com/nothingnesses/agent-images/smoke"
	"github.com/nothingnesses/agent-images/tags"
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
	// Compression is how layers are compressed (default gzip).
	Compression flake.Compression
	// LayerCache keeps packed layers between runs (default
	// flake.DefaultCacheDir).
	LayerCache string
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
	// semantic version's series (see tags.Policy).
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

	// Registry is how registries are reached, shared with the signer and
	// the change report; nil makes one.
	Registry *transport.Registry
	// Signer signs what is pushed, before any tag moves. Pushing needs one:
	// sign.New(ctx, sign.Config{Off: true}) publishes unsigned, on purpose.
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

// A step is one stage of a flow for one agent or image. Its error fails
// that agent or image, which then leaves the flow.
type (
	agentStep struct {
		name string
		run  func(r *run, ctx context.Context, a *agent) error
	}
	imageStep struct {
		name string
		run  func(r *run, ctx context.Context, img *record.Image) error
	}
)

// flow is what one mode does.
type flow struct {
	// plan runs for each agent before anything is built.
	plan []agentStep
	// image runs for each image as soon as a worker is free.
	image []imageStep
	// agent runs for each agent once all its images are through.
	agent []agentStep
}

// flows are the modes, declared: what a release, a split build, a merge
// and a changed-only matrix do, in order.
var flows = map[mode]flow{
	modeRelease: {
		plan:  []agentStep{{"read what is published", (*run).readPublished}},
		image: []imageStep{{"build", (*run).build}, {"smoke-test", (*run).smokeTest}},
		agent: []agentStep{{"put", (*run).put}, {"sign", (*run).sign}, {"tag", (*run).tag}, {"report", (*run).report}},
	},
	modeBuild: {
		image: []imageStep{{"build", (*run).build}, {"smoke-test", (*run).smokeTest}, {"stage", (*run).stage}},
	},
	modeMerge: {
		plan:  []agentStep{{"read what is published", (*run).readPublished}},
		agent: []agentStep{{"accept parts", (*run).acceptParts}, {"put", (*run).put}, {"sign", (*run).sign}, {"tag", (*run).tag}, {"report", (*run).report}},
	},
	modeChanged: {
		plan: []agentStep{{"read what is published", (*run).readPublished}, {"plan tags", (*run).planTags}},
	},
}

// run is one release in progress: the caller's options with their defaults,
// and what the run has worked out.
type run struct {
	o      Options
	mode   mode
	flow   flow
	jobs   int
	now    time.Time
	events func(Event)
	// prefixes are the registries, whenever the run uses them.
	prefixes []publish.Prefix
	client   *transport.Registry
	// dests are where agents are published: the registries in order, or
	// the layout.
	dests []publish.Publisher
	// runtime runs container smoke tests; nil for static checks only.
	runtime smoke.Runtime
	// smoke is false when nothing is smoke-tested (a dry run, a merge).
	smoke   bool
	builder *flake.Builder
	// allAgents is every agent of the flake's release set, selected or not.
	allAgents  []string
	sourceTime time.Time
	// targets are what the flake says of each image, by record.Image.String.
	targets map[string]flake.Target
	// inputs is how the flake's inputs are locked for this run.
	inputs map[string]record.Input
	// parts are the build records' images a merge takes, by record.Image.String.
	parts map[string][]part
}

var stagingKeyRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$`)

// newRun checks every option before anything is evaluated, built or
// pushed: a bad option fails here, never half way through a release.
func newRun(o Options, m mode) (*run, error) {
	r := &run{o: o, mode: m, flow: flows[m], jobs: cmp.Or(o.Jobs, runtime.NumCPU()), now: time.Now(), events: o.Events, client: o.Registry, targets: map[string]flake.Target{}}
	if o.Now != nil {
		r.now = o.Now()
	}
	if r.events == nil {
		r.events = func(Event) {}
	}
	if r.client == nil {
		r.client = transport.NewRegistry()
	}
	var errs []error
	bad := func(option, value, reason string) {
		errs = append(errs, &OptionError{Option: option, Value: value, Reason: reason})
	}
	if r.jobs < 1 {
		bad("Jobs", fmt.Sprint(o.Jobs), "want at least 1")
	}
	if r.pushes() {
		if len(o.Registries) == 0 {
			bad("Registries", "", "give the repository prefix agents are pushed under (for example ghcr.io/OWNER/REPO; under GitHub Actions the default is ghcr.io/<owner>/<repo>)")
		}
		seen := map[string]bool{}
		for _, reg := range o.Registries {
			p, err := publish.ParsePrefix(reg, o.Insecure)
			switch {
			case err != nil:
				bad("Registries", "", err.Error())
			case seen[p.String()]:
				bad("Registries", p.String(), "given twice: name each registry once")
			default:
				seen[p.String()] = true
				r.prefixes = append(r.prefixes, p)
			}
		}
		if o.Signer == nil && !o.DryRun {
			errs = append(errs, ErrNoSigner)
		}
	}
	// The tags every agent shares are checked now; the version tag is
	// checked per agent once the flake is read, still before any build.
	if _, err := r.tagPolicy("").Tags(); err != nil {
		errs = append(errs, fmt.Errorf("tags: %w", err))
	}
	if m == modeBuild && !stagingKeyRE.MatchString(r.stagingKey()) {
		bad("StagingKey", fmt.Sprintf("%q", r.stagingKey()), "want letters, digits, '_', '.' and '-', at most 64")
	}
	if m == modeMerge && o.From == "" {
		bad("From", "", "give the build records of `release build` (its --output files, or a directory of them); merge accepts only the parts they name")
	}
	if !slices.Contains([]string{"", "podman", "docker", "none"}, o.Runtime) {
		bad("Runtime", fmt.Sprintf("%q", o.Runtime), "want podman, docker or none")
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	r.smoke = (m == modeRelease || m == modeBuild) && !o.DryRun
	if r.smoke && o.Runtime != "none" {
		rt, err := smoke.NewRuntime(o.Runtime)
		if err != nil {
			return nil, &OptionError{Option: "Runtime", Reason: "smoke tests need a container runtime (or none, for static checks only): " + err.Error()}
		}
		r.runtime = rt
	}
	return r, nil
}

// OptionError is an option of a run that is wrong, named as Options names
// it; a command line words it by its flag (Named).
type OptionError struct {
	Option string
	// Value is the wrong value as the message quotes it; empty when the
	// option is missing.
	Value  string
	Reason string
}

func (e *OptionError) Error() string { return e.Named(e.Option) }

// Named is the message with the option called name.
func (e *OptionError) Named(name string) string {
	if e.Value != "" {
		name += " " + e.Value
	}
	return name + ": " + e.Reason
}

// ErrNoSigner is why a push cannot start without Options.Signer: a release
// that publishes unsigned says so with sign.New(ctx, sign.Config{Off: true}).
var ErrNoSigner = errors.New("pushing needs a signer")

// tagPolicy is the tag policy of an agent at version.
func (r *run) tagPolicy(version string) tags.Policy {
	return tags.Policy{Version: version, Commit: r.o.Commit, Now: r.now, Extra: r.o.ExtraTags, GitTag: r.o.GitTag, Preview: r.o.Preview}
}

// pushes reports whether the run writes to a registry.
func (r *run) pushes() bool { return r.mode != modeRelease || r.o.Push }

func (r *run) workDir() string { return cmp.Or(r.o.WorkDir, filepath.Join("dist", "work")) }

func (r *run) layoutDir() string { return cmp.Or(r.o.LayoutDir, filepath.Join("dist", "oci")) }

// stagingKey is the key split-mode builds and merges agree on.
func (r *run) stagingKey() string {
	return cmp.Or(r.o.StagingKey, tags.CommitTag(r.o.Commit), "local")
}

// agent is one agent of a run: its part of the report, whose Platforms are
// its image records, the tags it will move, and how each destination goes.
type agent struct {
	*record.Agent
	tags []tags.Tag
	// published is what each destination has under latest, read before
	// anything is built (nil where there is nothing).
	published []*publish.Published
	// readErr is why the first destination could not be read.
	readErr error
	// reuse is true when published stands for the agent unchanged in
	// every destination: then nothing is built.
	reuse bool
	// dests is how the agent's publication goes in each destination.
	dests []*destination
}

func (a *agent) name() string { return a.Agent.Agent }

// destination is one agent's publication in one destination.
type destination struct {
	pub publish.Publisher
	rel publish.Release
	res *publish.Result
	// signed is true when signing wrote anything there.
	signed bool
	rec    *record.Publication
}

func (d *destination) failed() bool { return d.rec.Status == record.StageFailed }

// start sets a run up to take agents through its flow: the flake's
// release set and every derivation in one evaluation, one record per
// selected target, the destinations and (when building) the builder.
func (r *run) start(ctx context.Context) ([]*agent, error) {
	all, err := flake.Load(ctx, r.o.Flake)
	if err != nil {
		return nil, err
	}
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
	r.inputs = meta.Inputs
	r.sourceTime = r.o.SourceTime
	if r.sourceTime.IsZero() {
		r.sourceTime = meta.LastModified
	}
	return r.startWith(all, targets)
}

// startWith is start for targets the caller has read already.
func (r *run) startWith(all, targets []flake.Target) ([]*agent, error) {
	r.allAgents = flake.Agents(all)
	if r.pushes() {
		for _, p := range r.prefixes {
			r.dests = append(r.dests, r.registry(p))
		}
	} else {
		r.dests = append(r.dests, publish.NewLayout(r.layoutDir()))
	}
	if len(r.flow.image) > 0 && r.flow.image[0].name == "build" {
		b, err := flake.NewBuilder(flake.WithJobs(r.jobs), flake.WithWorkDir(r.workDir()), flake.WithCompression(cmp.Or(r.o.Compression, flake.Gzip)), flake.WithCacheDir(r.o.LayerCache), flake.WithProgress(r.buildProgress))
		if err != nil {
			return nil, err
		}
		r.builder = b
	}
	return r.records(targets)
}

// records makes one record per target, grouped by agent in target order.
// An agent whose version gives no usable tag fails here, before it is built.
func (r *run) records(targets []flake.Target) ([]*agent, error) {
	var agents []*agent
	by := map[string]*agent{}
	tagErrs := map[string]error{}
	for _, t := range targets {
		a, ok := by[t.Agent]
		if !ok {
			a = &agent{Agent: &record.Agent{Agent: t.Agent, Version: t.Image.Version, Status: record.StagePlanned, Created: r.sourceTime}}
			a.tags, tagErrs[t.Agent] = r.tagPolicy(t.Image.Version).Tags()
			by[t.Agent] = a
			agents = append(agents, a)
		}
		p, err := t.System.Platform()
		if err != nil {
			return nil, err
		}
		img := &record.Image{Agent: t.Agent, System: string(t.System), Platform: p, DrvPath: t.Image.DrvPath}
		if err := tagErrs[t.Agent]; err != nil {
			img.Fail(fmt.Errorf("%s: %w", t, err))
		}
		// An agent no registry can hold is not built at all.
		for _, p := range r.prefixes {
			if _, err := p.Repository(t.Agent); err != nil && !img.Failed() {
				img.Fail(fmt.Errorf("%s: %w", t, err))
			}
		}
		r.targets[img.String()] = t
		a.Platforms = append(a.Platforms, img)
		r.events(Event{Agent: t.Agent, System: string(t.System), Stage: record.StagePlanned})
	}
	return agents, nil
}

// target is what the flake says of img.
func (r *run) target(img *record.Image) flake.Target { return r.targets[img.String()] }

// do takes agents through the run's flow: each agent's plan steps (at most
// jobs agents at once), then each image's steps as soon as a worker is free,
// and each agent's steps as soon as the last of its images is through,
// while other images still build: nothing waits for the slowest agent.
func (r *run) do(ctx context.Context, agents []*agent) {
	// Each agent writes only its own record, so the report keeps the
	// targets' order.
	var plan errgroup.Group
	plan.SetLimit(r.jobs)
	for _, a := range agents {
		plan.Go(func() error { r.agentSteps(ctx, a, r.flow.plan); return nil })
	}
	_ = plan.Wait()
	type job struct {
		img  *record.Image
		left *sync.WaitGroup // the agent's images still in the flow
	}
	var queue []job
	var finished sync.WaitGroup
	slots := make(chan struct{}, r.jobs)
	for _, a := range agents {
		left := new(sync.WaitGroup)
		for _, img := range a.Platforms {
			if len(r.flow.image) > 0 && !a.reuse && !img.Failed() {
				left.Add(1)
				queue = append(queue, job{img, left})
			}
		}
		finished.Go(func() {
			left.Wait()
			slots <- struct{}{}
			defer func() { <-slots }()
			r.agentSteps(ctx, a, r.flow.agent)
		})
	}
	if r.builder != nil {
		held := make([]flake.Target, len(queue))
		for i, j := range queue {
			held[i] = r.target(j.img)
		}
		r.builder.RealiseHeld(ctx, held)
	}
	next := make(chan job)
	var workers sync.WaitGroup
	for range min(r.jobs, max(len(queue), 1)) {
		workers.Go(func() {
			for j := range next {
				r.imageSteps(ctx, j.img)
				j.left.Done()
			}
		})
	}
	for _, j := range queue {
		next <- j
	}
	close(next)
	workers.Wait()
	finished.Wait()
}

// agentSteps takes a through steps until one fails it.
func (r *run) agentSteps(ctx context.Context, a *agent, steps []agentStep) {
	for _, s := range steps {
		if a.Failed() {
			return
		}
		if err := s.run(r, ctx, a); err != nil {
			a.Status, a.Error = record.StageFailed, err.Error()
			r.events(Event{Agent: a.name(), Stage: record.StageFailed, Detail: a.Error})
		}
	}
}

// imageSteps takes img through the flow's image steps until one fails it.
func (r *run) imageSteps(ctx context.Context, img *record.Image) {
	for _, s := range r.flow.image {
		if img.Failed() {
			break
		}
		if err := s.run(r, ctx, img); err != nil {
			img.Fail(err)
			r.events(Event{Agent: img.Agent, System: img.System, Stage: record.StageFailed, Detail: img.Error})
		}
	}
}

// build realises the image's derivation and records what it built.
func (r *run) build(ctx context.Context, img *record.Image) error {
	built, err := r.builder.Build(ctx, r.target(img))
	if err != nil {
		return err
	}
	img.OutPath, img.Image, img.Digest = built.OutPath, built.Image, built.Digest
	if img.Size, err = pullsize.Of(built.Image); err != nil {
		return fmt.Errorf("reading %s: %w", img, err)
	}
	return nil
}

// buildProgress turns the builder's progress into events; a failure is
// reported by imageSteps.
func (r *run) buildProgress(e flake.Event) {
	ev := Event{Agent: e.Target.Agent, System: string(e.Target.System), Stage: record.StageBuilding, Detail: e.Stage}
	switch e.Stage {
	case "built":
		ev.Stage, ev.Detail = record.StageBuilt, ""
	case "failed":
		return
	}
	r.events(ev)
}

// smokeTest smoke-tests one built image, when the run tests, and records
// the result; a failed check fails the image.
func (r *run) smokeTest(ctx context.Context, img *record.Image) error {
	if !r.smoke {
		return nil
	}
	r.events(Event{Agent: img.Agent, System: img.System, Stage: record.StageTesting})
	opts := []smoke.Option{smoke.WithPlatform(img.Platform)}
	if r.runtime != nil {
		opts = append(opts, smoke.WithRuntime(r.runtime))
	}
	rep, err := smoke.Test(ctx, img.Image, smoke.ExpectOf(r.target(img).Image), opts...)
	img.Smoke = smoke.Brief(rep)
	if err != nil {
		return fmt.Errorf("smoke-testing %s: %w", img, err)
	}
	if failed := rep.Failed(); len(failed) > 0 {
		var errs []error
		for _, f := range failed {
			errs = append(errs, fmt.Errorf("%s (%s)", f.Check, f.Detail))
		}
		return fmt.Errorf("smoke test of %s failed: %w", img, errors.Join(errs...))
	}
	r.events(Event{Agent: img.Agent, System: img.System, Stage: record.StageTested, Detail: string(rep.Mode)})
	return nil
}

// registry is the publisher of this run to one registry. Every agent image
// shares its base layers, so a layer this run has not pushed there is
// offered for mounting from the repository of the release set's first
// agent (the second, for the first agent itself), where an earlier run or
// another job put it.
func (r *run) registry(prefix publish.Prefix) *publish.Registry {
	var siblings []name.Repository
	for _, a := range r.allAgents {
		if len(siblings) == 2 {
			break
		}
		if repo, err := prefix.Repository(a); err == nil {
			siblings = append(siblings, repo)
		}
	}
	return publish.NewRegistry(prefix, r.client, publish.WithProgress(r.pushProgress), publish.WithMountFrom(siblings...))
}

// where names the i-th destination as the report does.
func (r *run) where(i int) string {
	if r.pushes() {
		return r.prefixes[i].String()
	}
	return r.layoutDir()
}

func (r *run) pushProgress(p publish.Progress) {
	agent := filepath.Base(p.Repository)
	r.events(Event{Agent: agent, Stage: record.StagePushing, Complete: p.Complete, Total: p.Total})
}

// report is the release report of agents.
func (r *run) newReport(agents []*agent) *record.Report {
	rep := &record.Report{Commit: r.o.Commit, DryRun: r.o.DryRun}
	for _, a := range agents {
		rep.Agents = append(rep.Agents, a.Agent)
	}
	if r.pushes() {
		for _, p := range r.prefixes {
			rep.Registries = append(rep.Registries, p.String())
		}
		rep.Registry = rep.Registries[0]
	} else {
		rep.Layout = r.layoutDir()
	}
	return rep
}
