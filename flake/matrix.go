// Package flake is the Nix side of a release: it reads the flake's release
// set in one evaluation (the targets, one per agent and system, and what
// each image declares of itself), realises what each target is made of, and
// packs it from the store as an OCI image, through a layer cache that packs
// and compresses each layer once, ever. It is the one place that runs nix.
package flake

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// System is a Nix system double such as "x86_64-linux".
type System string

// The systems images are built for.
const (
	X86_64Linux  System = "x86_64-linux"
	Aarch64Linux System = "aarch64-linux"
)

// Systems lists every supported system, in release order.
var Systems = []System{X86_64Linux, Aarch64Linux}

// Platform is the OCI platform of images built for the system.
func (s System) Platform() (v1.Platform, error) {
	switch s {
	case X86_64Linux:
		return v1.Platform{OS: "linux", Architecture: "amd64"}, nil
	case Aarch64Linux:
		return v1.Platform{OS: "linux", Architecture: "arm64"}, nil
	}
	return v1.Platform{}, fmt.Errorf("system %q is not supported: use one of %v", string(s), Systems)
}

// Image is what the flake says about one image: the agentImage attribute of
// its derivation. JSON names are the Nix attribute names.
type Image struct {
	Attr             string   `json:"attr"`
	Name             string   `json:"name"`
	Version          string   `json:"version"`
	Description      string   `json:"description"`
	Unfree           bool     `json:"unfree"`
	License          string   `json:"license"`
	MainProgram      string   `json:"mainProgram"`
	Release          bool     `json:"release"`
	System           System   `json:"system"`
	ImageName        string   `json:"imageName"`
	ImageTag         string   `json:"imageTag"`
	User             string   `json:"user"`
	UID              int      `json:"uid"`
	GID              int      `json:"gid"`
	Home             string   `json:"home"`
	WorkingDir       string   `json:"workingDir"`
	ExtraDirectories []string `json:"extraDirectories"`
	WithNix          bool     `json:"withNix"`
	WithNixLd        bool     `json:"withNixLd"`
	// Entrypoint is the program the image runs, with its arguments.
	Entrypoint []string `json:"entrypoint"`
	// ExtraEnv is the environment the flake added to the defaults.
	ExtraEnv map[string]string `json:"extraEnv"`
	// Commands are the toolbox's programs (its packages' meta.mainProgram).
	Commands []string `json:"commands"`
	// DrvPath is the derivation that builds the image, evaluated with the
	// rest: a build realises it without evaluating the flake again, and a
	// release compares it with the derivation the published index names.
	DrvPath string `json:"drvPath"`
	// ConfDrvPath is the derivation of the image's conf.json (nixpkgs'
	// streamLayeredImage conf: store paths per layer and the config), from
	// which Build packs the image itself; "" from an mkAgentImage that
	// cannot name it.
	ConfDrvPath string `json:"confDrvPath"`
	// Labels are the image config's OCI labels, exactly as mkAgentImage set
	// them; nil from an older mkAgentImage.
	Labels map[string]string `json:"labels"`
}

// Target is one image to release: an agent built for a system.
type Target struct {
	Agent  string
	System System
	Image  Image
}

func (t Target) String() string { return t.Agent + "/" + string(t.System) }

// releaseSetExpr selects, for every system, the agentImage attribute of the
// packages that belong to the release set, with the derivation of each. It
// uses builtins only, so it works whatever nixpkgs the flake is evaluated
// against.
const releaseSetExpr = `packages: builtins.mapAttrs (system: images:
  builtins.listToAttrs (builtins.concatMap (attr:
    let image = images.${attr}; in
    if builtins.isAttrs image && image ? agentImage && (image.agentImage.release or false)
    then [ { name = attr; value = image.agentImage // { inherit (image) drvPath; }; } ]
    else [ ]) (builtins.attrNames images))) packages`

// Load evaluates the flake's release set with one nix eval and returns every
// target, sorted by agent then system, each with the derivation that builds
// it. It is the one evaluation of a release: nothing after it evaluates the
// flake again.
func Load(ctx context.Context, flake Flake, opts ...Option) ([]Target, error) {
	o := makeOptions(opts)
	args := append([]string{"eval", "--json", flake.Installable("packages"), "--apply", releaseSetExpr}, flake.OverrideArgs()...)
	out, err := o.nix(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("reading the release set of flake %s: %w", flake, err)
	}
	return Parse(out)
}

// Parse turns the JSON of the release-set evaluation into sorted targets.
func Parse(data []byte) ([]Target, error) {
	var bySystem map[System]map[string]Image
	if err := json.Unmarshal(data, &bySystem); err != nil {
		return nil, fmt.Errorf("decoding the flake's release set: %w", err)
	}
	var targets []Target
	for system, images := range bySystem {
		if _, err := system.Platform(); err != nil {
			// The flake may build for systems we do not release (darwin dev shells).
			continue
		}
		for attr, img := range images {
			// The package attribute names the agent, its repository and its
			// --agent; mkAgentImage can only guess it from the image name,
			// which a flake is free to choose otherwise.
			img.Attr = attr
			if img.System == "" {
				img.System = system
			}
			if img.MainProgram == "" {
				return nil, fmt.Errorf("flake image %s for %s has no mainProgram: set meta.mainProgram on the agent package", attr, system)
			}
			if !strings.HasSuffix(img.DrvPath, ".drv") {
				return nil, fmt.Errorf("flake image %s for %s: the evaluation gave %q as its derivation, want a .drv path", attr, system, img.DrvPath)
			}
			targets = append(targets, Target{Agent: attr, System: system, Image: img})
		}
	}
	Sort(targets)
	return targets, nil
}

// Sort orders targets by agent, then by system in release order.
func Sort(targets []Target) {
	slices.SortFunc(targets, func(a, b Target) int { return order(a.Agent, a.System, b.Agent, b.System) })
}

// order compares by agent, then by system in release order.
func order(agentA string, a System, agentB string, b System) int {
	return cmp.Or(strings.Compare(agentA, agentB), cmp.Compare(slices.Index(Systems, a), slices.Index(Systems, b)))
}

// Agents returns the distinct agent names of targets, sorted.
func Agents(targets []Target) []string {
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.Agent
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func makeOptions(opts []Option) options {
	o := options{jobs: runtime.NumCPU(), compression: Gzip, nix: Run, progress: func(Event) {}}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}
