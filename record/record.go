// Package record is what a release writes down: per-arch images (Image),
// agents (Agent), release.json (Report), the split-mode build record
// (Build) and the change report (Changes). Only the pipeline writes it, from
// what each stage returns. It imports nothing of this module, so that the
// file format sits at the bottom and every reader shares one schema.
package record

import (
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Stage names a step of a release, and the outcome of an agent.
type Stage string

const (
	StagePlanned   Stage = "planned"
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
)

// Image is one per-arch image of an agent, with what the stages returned
// for it. The first stage that fails calls Fail; later stages leave a failed
// image alone.
type Image struct {
	Agent     string      `json:"agent"`
	System    string      `json:"system"` // the Nix system, x86_64-linux
	Platform  v1.Platform `json:"platform"`
	DrvPath   string      `json:"drvPath,omitempty"`
	Digest    v1.Hash     `json:"digest,omitzero"`
	Size      int64       `json:"size,omitempty"` // manifest, config and layers
	Smoke     *Smoke      `json:"smoke,omitempty"`
	Signature *Signature  `json:"signature,omitempty"`
	Error     string      `json:"error,omitempty"`

	OutPath string   `json:"-"`
	Image   v1.Image `json:"-"`
	// Ref is where the image was staged (split mode) or found published
	// (a reused index), by digest, in the first registry. Where it is in
	// any other registry is worked out when needed, never stored here.
	Ref name.Digest `json:"-"`
	// Err is why the image cannot be released; Error is its message.
	Err error `json:"-"`
}

func (i *Image) String() string { return i.Agent + "/" + string(i.System) }

// Fail records why the image cannot be released.
func (i *Image) Fail(err error) {
	i.Err, i.Error = err, err.Error()
}

// Failed reports whether a stage failed the image, here or in the job that
// wrote the record.
func (i *Image) Failed() bool { return i.Err != nil || i.Error != "" }

// Smoke is the smoke test of one image in brief: the failed and skipped
// checks in full, the passed ones counted.
type Smoke struct {
	// Mode is "container" when checks ran in a runtime as well, "static"
	// when only the image's config and files were read (Reason says why).
	Mode    string  `json:"mode"`
	Runner  string  `json:"runner,omitempty"`
	Reason  string  `json:"reason,omitempty"`
	Passed  int     `json:"passed"`
	Failed  []Check `json:"failed,omitempty"`
	Skipped []Check `json:"skipped,omitempty"`
}

// Check is one smoke check that did not pass, as the smoke catalogue
// names it (smoke/doc.go).
type Check struct {
	Check  string `json:"check"`
	Static bool   `json:"static"`
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// Signature is the evidence signing attached to one manifest, and where it
// is stored (cosign's tags).
type Signature struct {
	Signature    string   `json:"signature,omitempty"`
	Attestations string   `json:"attestations,omitempty"`
	Predicates   []string `json:"predicateTypes,omitempty"`
	// Added lists what this run wrote ("signature", predicate types); empty
	// when the manifest was already signed and attested.
	Added []string `json:"added,omitempty"`
}

// Signing is how an agent's release was signed, and the cosign commands
// that check the index signature and one per-arch image's provenance.
type Signing struct {
	Mode                     string    `json:"mode"`
	Index                    Signature `json:"index"`
	VerifyCommand            string    `json:"verifyCommand,omitempty"`
	VerifyAttestationCommand string    `json:"verifyAttestationCommand,omitempty"`
}

// Kept is a tag a release did not move because it points at a newer index.
type Kept struct {
	Tag   string  `json:"tag"`
	Index v1.Hash `json:"index"`
	// Created and Version are the newer index's ordering key.
	Created time.Time `json:"created,omitzero"`
	Version string    `json:"version,omitempty"`
}

// Publication is one agent's release in one destination (a registry
// repository, or "oci:DIR" for a layout): what moved there and how it ended.
// Each destination is published on its own, so one can fail while the
// others complete.
type Publication struct {
	Repository string   `json:"repository"`
	Status     Stage    `json:"status"`
	Error      string   `json:"error,omitempty"`
	Moved      []string `json:"moved,omitempty"`
	Kept       []Kept   `json:"kept,omitempty"`
	Repaired   []string `json:"repaired,omitempty"`
	Unchanged  bool     `json:"unchanged"`
	Signing    *Signing `json:"signing,omitempty"`
}

// Failed reports whether publishing there failed.
func (p *Publication) Failed() bool { return p.Status == StageFailed }

// Agent is one agent's part of a release. With several registries the index
// is the same in each, and Published says how each went. Repository, Moved,
// Kept, Repaired and Signing are those of the first destination; Status,
// Error and Unchanged cover them all: the agent is done only when every
// destination is, and failed when any failed.
type Agent struct {
	Agent      string  `json:"agent"`
	Version    string  `json:"version"`
	Repository string  `json:"repository,omitempty"`
	Index      v1.Hash `json:"index,omitzero"` // the multi-arch index
	// Created is the source commit's time, recorded on the index: with the
	// version it orders releases, so that no tag moves backwards.
	Created   time.Time `json:"created,omitzero"`
	Platforms []*Image  `json:"platforms"`
	Tags      []string  `json:"tags,omitempty"`
	Moved     []string  `json:"moved,omitempty"` // the tags this run changed
	Kept      []Kept    `json:"kept,omitempty"`  // the tags left at a newer index
	// Repaired are the per-arch images pushed again because the registry
	// had lost them, although a tag already pointed at their index.
	Repaired []string `json:"repaired,omitempty"`
	// Unchanged is true when this exact index, every image in it and every
	// signature were already published: nothing was uploaded or signed.
	Unchanged bool `json:"unchanged"`
	// SameDerivation is true when the agent was not built at all: the index
	// latest pointed at (in every registry) was built from the derivations
	// this release evaluated, and is complete, so it is the release again,
	// with the revision and time it was built at.
	SameDerivation bool     `json:"sameDerivation,omitempty"`
	Status         Stage    `json:"status"`
	Error          string   `json:"error,omitempty"`
	Signing        *Signing `json:"signing,omitempty"`
	// Published lists each destination the agent was published to, in
	// --registry order (one entry for one registry or the layout); empty
	// when it was not published (it failed before).
	Published []*Publication `json:"published,omitempty"`
	// Changes is what changed since the release the agent's latest tag
	// named before this run moved any tag. Nil when there was none (a first
	// release), latest already named this index, nothing was pushed, or the
	// comparison failed (a note then says why).
	Changes *Changes `json:"changes,omitempty"`
	Notes   []string `json:"notes,omitempty"` // what it could not do, without failing for it
}

// Failed reports whether the agent's release failed.
func (a *Agent) Failed() bool { return a.Status == StageFailed }

// Report is release.json: the outcome of `release`, `release merge` or
// `release build`.
type Report struct {
	// Registry is the first registry, Registries all of them in order.
	Registry   string   `json:"registry,omitempty"`
	Registries []string `json:"registries,omitempty"`
	Layout     string   `json:"layout,omitempty"`
	Commit     string   `json:"commit,omitempty"`
	DryRun     bool     `json:"dryRun,omitempty"`
	Agents     []*Agent `json:"agents"`
}

// Failed lists the agents whose release failed.
func (r *Report) Failed() []string {
	var out []string
	for _, a := range r.Agents {
		if a.Failed() {
			out = append(out, a.Agent)
		}
	}
	return out
}

func (c Check) String() string {
	kind := "run"
	if c.Static {
		kind = "static"
	}
	if c.Detail == "" {
		return fmt.Sprintf("%-4s %-6s %s", c.Status, kind, c.Check)
	}
	return fmt.Sprintf("%-4s %-6s %s: %s", c.Status, kind, c.Check, c.Detail)
}
