package smoke

import (
	"context"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/nothingnesses/agent-images/record"
)

// Status is the outcome of one check.
type Status = string

const (
	Pass Status = "pass"
	Fail Status = "fail"
	// Skip means the check could not honestly run against this image, for
	// example real-Nix checks against a stand-in nix; Detail says why.
	Skip Status = "skip"
)

// Mode says how far a Test went.
type Mode string

const (
	// ModeContainer: static checks plus checks inside a running container.
	ModeContainer Mode = "container"
	// ModeStatic: only the checks read from config and filesystem; Report.Reason says why.
	ModeStatic Mode = "static"
)

// Result is one check of the catalogue, in the form a release records it.
type Result = record.Check

// Report is everything Test found out about one image.
type Report struct {
	Platform v1.Platform `json:"platform"`
	Mode     Mode        `json:"mode"`
	// Reason says why only static checks ran (Mode == ModeStatic).
	Reason string `json:"reason,omitempty"`
	// Runner names the runtime and how the platform ran, e.g. "podman, emulated by qemu-aarch64".
	Runner  string   `json:"runner,omitempty"`
	Results []Result `json:"results"`
}

// Failed returns the failing checks; an image passes when it is empty.
func (r *Report) Failed() []Result { return r.filter(Fail) }

func (r *Report) filter(s Status) (out []Result) {
	for _, res := range r.Results {
		if res.Status == s {
			out = append(out, res)
		}
	}
	return out
}

type options struct {
	runtime  Runtime
	platform *v1.Platform
	// Set only by the tests (export_test.go): flags for every container
	// run, and where progress lines go.
	runFlags []string
	logf     func(string, ...any)
}

// Option configures Test.
type Option func(*options) error

// WithRuntime runs the container checks in rt. Without it (or with nil) only
// the static checks run.
func WithRuntime(rt Runtime) Option {
	return func(o *options) error { o.runtime = rt; return nil }
}

// WithPlatform states the image's platform instead of reading it from the
// image config; the config must agree.
func WithPlatform(p v1.Platform) Option {
	return func(o *options) error {
		if p.OS == "" || p.Architecture == "" {
			return fmt.Errorf("platform %q needs both OS and architecture", p.String())
		}
		o.platform = &p
		return nil
	}
}

// Test runs the catalogue against img. The error is for infrastructure
// failures only (the image cannot be read, the runtime cannot load or start
// it); every check that does not hold is a failing Result in the Report.
func Test(ctx context.Context, img v1.Image, want Expect, opts ...Option) (*Report, error) {
	o := options{logf: func(string, ...any) {}}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if err := want.validate(); err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading image config: %w", err)
	}
	plat := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
	if o.platform != nil {
		if (cf.OS != "" && cf.OS != o.platform.OS) || (cf.Architecture != "" && cf.Architecture != o.platform.Architecture) {
			return nil, fmt.Errorf("image config says %s/%s, but platform %s was asked for", cf.OS, cf.Architecture, o.platform.String())
		}
		plat = *o.platform
	}
	if plat.OS == "" || plat.Architecture == "" {
		return nil, errors.New("image config names no OS/architecture; pass WithPlatform")
	}
	o.logf("smoke: reading the %s image filesystem", plat.String())
	fsys, err := readImageFS(img)
	if err != nil {
		return nil, err
	}
	st := &staticRun{cfg: cf.Config, fs: fsys, want: want, plat: plat}
	rep := &Report{Platform: plat, Mode: ModeStatic, Results: st.run()}

	if o.runtime == nil {
		rep.Reason = "no container runtime given"
		return rep, nil
	}
	ok, how, err := CanRun(plat)
	if err != nil {
		return nil, err
	}
	if !ok {
		rep.Reason = how
		return rep, nil
	}
	rep.Mode = ModeContainer
	rep.Runner = o.runtime.Name() + ", " + how
	res, err := runContainerChecks(ctx, o.runtime, img, st, o.runFlags, o.logf)
	if err != nil {
		return nil, err
	}
	rep.Results = append(rep.Results, res...)
	return rep, nil
}

// Brief is rep in brief, as a release records it: the failed and skipped
// checks in full, the passed ones counted; nil for none.
func Brief(rep *Report) *record.Smoke {
	if rep == nil {
		return nil
	}
	b := &record.Smoke{Mode: string(rep.Mode), Runner: rep.Runner, Reason: rep.Reason, Failed: rep.Failed(), Skipped: rep.filter(Skip)}
	b.Passed = len(rep.Results) - len(b.Failed) - len(b.Skipped)
	return b
}
