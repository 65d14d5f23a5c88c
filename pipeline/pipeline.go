// Package pipeline owns the order of a release: read the matrix, build every
// target, smoke-test every image, then per agent publish the per-arch images,
// the index, the signatures and, last, the tags. It also runs the two halves
// of a split release (build on native runners, merge in another job).
// An agent whose build or smoke test fails is not published at all; the
// other agents go on.
package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/nothingnesses/agent-images/build"
	"github.com/nothingnesses/agent-images/internal/nix"
	"github.com/nothingnesses/agent-images/matrix"
	"github.com/nothingnesses/agent-images/publish"
	"github.com/nothingnesses/agent-images/smoke"
)

// Options describe one release.
type Options struct {
	Flake nix.Flake
	// Agents and Systems select targets; empty means all.
	Agents  []string
	Systems []matrix.System
	Jobs    int
	// WorkDir holds out-links and archives (default ./dist/work).
	WorkDir string

	// Push sends the release to Registry (a repository prefix: each agent
	// goes to Registry/<agent>); without it the release lands in LayoutDir.
	Push      bool
	Registry  string
	Insecure  bool
	LayoutDir string

	// Runtime names the container runtime for smoke tests: "podman",
	// "docker", "" for the first that works, or "none" for static checks only.
	Runtime string

	// Source and Commit describe this repository, for annotations and the
	// sha-<short> tag; Commit may be empty when unknown.
	Source string
	Commit string
	// ExtraTags are moved along with the standard ones.
	ExtraTags []string
	// StagingKey names the split-mode staging tags (default: derived from Commit).
	StagingKey string

	DryRun bool

	// Signer signs what was pushed before tags move; nil does not sign.
	Signer Signer
	// Events receives progress; nil discards it.
	Events func(Event)
	// Now is the clock for the date tag (default time.Now).
	Now func() time.Time
	// Parsed registry name options (insecure).
	nameOptions []name.Option
	// Every agent of the flake's release set, selected or not.
	allAgents []string
}

// Event is one step of progress for a person watching.
type Event struct {
	Agent  string
	System matrix.System // empty for agent-wide steps
	Stage  Stage
	Detail string
	// Bytes pushed so far and in all, while pushing.
	Complete, Total int64
}

// Stage names a step of the release.
type Stage string

const (
	StageBuilding  Stage = "building"
	StageBuilt     Stage = "built"
	StageTesting   Stage = "testing"
	StageTested    Stage = "tested"
	StagePushing   Stage = "pushing"
	StageSigning   Stage = "signing"
	StageTagging   Stage = "tagging"
	StageDone      Stage = "done"
	StageUnchanged Stage = "unchanged"
	StageFailed    Stage = "failed"
	StagePlanned   Stage = "planned"
)

// Signer signs and attests an agent's pushed images and index. It runs
// after everything is in the registry and before any tag moves; an error
// stops that agent's release with no tag moved.
type Signer interface {
	Sign(ctx context.Context, req SignRequest) (any, error)
}

// SignRequest is what one agent's signing needs.
type SignRequest struct {
	Repository name.Repository
	Index      name.Digest
	Images     []SignImage
	Agent      matrix.Image
	Source     string
	Commit     string
	// Unchanged is true when this exact index was already published.
	Unchanged bool
}

// SignImage is one per-arch image of a SignRequest.
type SignImage struct {
	System   matrix.System
	Platform v1.Platform
	Digest   name.Digest
	Image    v1.Image
	// DrvPath is the Nix derivation that built it, when built in this run.
	DrvPath string
}

// Validate fills in defaults and rejects options that cannot work together,
// before anything is built. Release, BuildStaged and Merge call it too.
func (o *Options) Validate() error { return o.defaults() }

func (o *Options) defaults() error {
	if o.Jobs == 0 {
		o.Jobs = runtime.NumCPU()
	}
	if o.Jobs < 1 {
		return fmt.Errorf("--jobs %d: want at least 1", o.Jobs)
	}
	if o.WorkDir == "" {
		o.WorkDir = filepath.Join("dist", "work")
	}
	if o.LayoutDir == "" {
		o.LayoutDir = filepath.Join("dist", "oci")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Events == nil {
		o.Events = func(Event) {}
	}
	if o.Insecure {
		o.nameOptions = append(o.nameOptions, name.Insecure)
	}
	if o.Push && o.Registry == "" {
		return fmt.Errorf("--push needs --registry, the repository prefix agents are pushed under (for example ghcr.io/OWNER/REPO; under GitHub Actions the default is ghcr.io/<owner>/<repo>)")
	}
	if o.Registry != "" {
		if _, err := name.NewRepository(strings.TrimSuffix(o.Registry, "/")+"/x", o.nameOptions...); err != nil {
			return fmt.Errorf("--registry %q is not a repository prefix: %w", o.Registry, err)
		}
	}
	return nil
}

// Repository is where an agent's images go: <registry>/<agent>.
func (o *Options) Repository(agent string) (name.Repository, error) {
	return name.NewRepository(strings.TrimSuffix(o.Registry, "/")+"/"+agent, o.nameOptions...)
}

func (o *Options) targets(ctx context.Context) ([]matrix.Target, error) {
	all, err := matrix.Load(ctx, o.Flake)
	if err != nil {
		return nil, err
	}
	o.allAgents = matrix.Agents(all)
	return matrix.Select(all, o.Agents, o.Systems)
}

// registry is the publisher for this release. Every agent image shares its
// base layers, so a layer this run has not pushed is offered for mounting
// from the repository of the release set's first agent (the second, for the
// first agent itself), where an earlier run or another job put it.
func (o *Options) registry() *publish.Registry {
	opts := []publish.RegistryOption{publish.WithProgress(o.pushProgress)}
	var siblings []name.Repository
	for _, a := range o.allAgents {
		if len(siblings) == 2 {
			break
		}
		if repo, err := o.Repository(a); err == nil {
			siblings = append(siblings, repo)
		}
	}
	return publish.NewRegistry(append(opts, publish.WithMountFrom(siblings...))...)
}

func (o *Options) tags(version string) ([]string, error) {
	return publish.TagPolicy{Version: version, Commit: o.Commit, Now: o.Now(), Extra: o.ExtraTags}.Tags()
}

func (o *Options) annotations(img matrix.Image) map[string]string {
	a := map[string]string{
		publish.AnnotationVersion: img.Version,
		publish.AnnotationTitle:   img.Attr,
	}
	if o.Source != "" {
		a[publish.AnnotationSource] = o.Source
	}
	if o.Commit != "" {
		a[publish.AnnotationRevision] = o.Commit
	}
	return a
}

// stagingKey is the key split-mode builds and merges agree on.
func (o *Options) stagingKey() string {
	if o.StagingKey != "" {
		return o.StagingKey
	}
	if len(o.Commit) >= 7 {
		return "sha-" + o.Commit[:7]
	}
	return "local"
}

// tested is one target after build and smoke test.
type tested struct {
	build.Result
	Smoke *smoke.Report
	Err   error
}

// buildAndTest builds every target and smoke-tests every image that built.
func (o *Options) buildAndTest(ctx context.Context, targets []matrix.Target, skipSmoke bool) ([]tested, error) {
	results, err := build.Build(ctx, o.Flake, targets,
		build.WithJobs(o.Jobs),
		build.WithWorkDir(o.WorkDir),
		build.WithProgress(func(e build.Event) {
			ev := Event{Agent: e.Target.Agent, System: e.Target.System, Stage: StageBuilding}
			switch e.Stage {
			case "built":
				ev.Stage = StageBuilt
			case "failed":
				ev.Stage, ev.Detail = StageFailed, e.Err.Error()
			default:
				ev.Detail = e.Stage
			}
			o.Events(ev)
		}))
	if err != nil {
		return nil, err
	}
	out := make([]tested, len(results))
	var rt smoke.Runtime
	if !skipSmoke && o.Runtime != "none" {
		rt, err = smoke.NewRuntime(o.Runtime)
		if err != nil {
			return nil, fmt.Errorf("smoke tests need a container runtime (or --runtime none for static checks only): %w", err)
		}
	}
	var g errgroup.Group
	g.SetLimit(o.Jobs)
	for i, r := range results {
		out[i] = tested{Result: r, Err: r.Err}
		if r.Err != nil || skipSmoke {
			continue
		}
		g.Go(func() error {
			t := r.Target
			o.Events(Event{Agent: t.Agent, System: t.System, Stage: StageTesting})
			plat, _ := t.System.Platform()
			opts := []smoke.Option{smoke.WithPlatform(plat)}
			if rt != nil {
				opts = append(opts, smoke.WithRuntime(rt))
			}
			rep, err := smoke.Test(ctx, r.Image, t.Image.Expect(), opts...)
			out[i].Smoke = rep
			switch {
			case err != nil:
				out[i].Err = fmt.Errorf("smoke-testing %s: %w", t, err)
			case len(rep.Failed()) > 0:
				var names []string
				for _, f := range rep.Failed() {
					names = append(names, f.Check+" ("+f.Detail+")")
				}
				out[i].Err = fmt.Errorf("smoke test of %s failed: %s", t, strings.Join(names, "; "))
			}
			if out[i].Err != nil {
				o.Events(Event{Agent: t.Agent, System: t.System, Stage: StageFailed, Detail: out[i].Err.Error()})
			} else {
				o.Events(Event{Agent: t.Agent, System: t.System, Stage: StageTested, Detail: string(rep.Mode)})
			}
			return nil
		})
	}
	_ = g.Wait()
	return out, nil
}

// group collects tested targets by agent, in target order.
func group(ts []tested) (agents []string, by map[string][]tested) {
	by = map[string][]tested{}
	for _, t := range ts {
		a := t.Target.Agent
		if _, ok := by[a]; !ok {
			agents = append(agents, a)
		}
		by[a] = append(by[a], t)
	}
	return agents, by
}

// forEachAgent runs f for each agent, at most jobs at a time, writing into a
// pre-sized slice so the report's order is the targets' order.
func forEachAgent(jobs int, agents []string, f func(i int, agent string)) {
	var g errgroup.Group
	g.SetLimit(jobs)
	for i, a := range agents {
		g.Go(func() error { f(i, a); return nil })
	}
	_ = g.Wait()
}
