package publish

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/nothingnesses/agent-images/internal/pullsize"
	"github.com/nothingnesses/agent-images/record"
)

// Publisher puts one agent's release somewhere: a registry (Registry) or a
// local OCI image layout (Layout).
type Publisher interface {
	// Publish makes sure every image of rel and its index are there, runs
	// hook, then moves rel's tags, none of them backwards. On an error the
	// Result, when there is one, says where and what was done by then.
	Publish(ctx context.Context, rel Release, hook Hook) (*Result, error)
	// Plan is what Publish would do, reading but changing nothing.
	Plan(ctx context.Context, rel Release) (*Result, error)
	// Published is the agent's index that latest points at, with its
	// images checked to be there; nil when there is none.
	Published(ctx context.Context, agent string) (*Published, error)
}

// Result is what publishing one agent's release did (or, planned, would do).
type Result struct {
	// Repository is where it went: a registry repository, or "oci:DIR" for a layout.
	Repository string
	Index      v1.Hash
	IndexSize  int64
	// Ref is the index by digest in a registry; zero in a layout.
	Ref name.Digest
	// Tags point at Index once Publish returns, except Kept.
	Tags []string
	// Moved are the tags this run changed (the rest already pointed at Index).
	Moved []string
	// Kept are the tags left at a newer index.
	Kept []record.Kept
	// Repaired are the platforms whose image was missing although a tag
	// already pointed at this index.
	Repaired []string
	// Unchanged is true when this index and every image in it were already
	// there, so nothing was uploaded.
	Unchanged bool
}

// Hook runs after every image and the index are in the destination and
// before any tag moves; signing happens here. An error stops the release of
// this agent with no tag moved.
type Hook func(ctx context.Context, r *Result) error

// store is where a release lands: the one difference between a registry
// repository and a layout.
type store interface {
	where() string
	// ref is d in the store, zero where manifests have no name (a layout).
	ref(d v1.Hash) name.Digest
	// current returns the digest each existing tag points at.
	current(ctx context.Context, tags []string) (map[string]v1.Hash, error)
	// manifest returns the raw manifest d, nil when it is not there.
	manifest(ctx context.Context, d v1.Hash) ([]byte, error)
	putImage(ctx context.Context, img v1.Image) error
	putIndex(ctx context.Context, idx v1.ImageIndex) error
	// index reads the index d that is there.
	index(ctx context.Context, d v1.Hash) (v1.ImageIndex, error)
	tag(ctx context.Context, tag string, idx v1.ImageIndex) error
}

// publish is the order of every release, in a registry or a layout. With
// dryRun it reads everything a release reads and writes nothing. On an
// error the Result still says where, and what it knew by then.
func publish(ctx context.Context, s store, rel Release, hook Hook, dryRun bool) (*Result, error) {
	if rel.Reuse != nil {
		return republish(ctx, s, rel, hook, dryRun)
	}
	res := &Result{Repository: s.where(), Tags: Names(rel.Tags)}
	idx, err := Index(rel)
	if err != nil {
		return res, fmt.Errorf("assembling the index of %s: %w", rel.Agent, err)
	}
	if res.Index, err = idx.Digest(); err != nil {
		return res, err
	}
	if res.IndexSize, err = idx.Size(); err != nil {
		return res, err
	}
	d := res.Index
	res.Ref = s.ref(d)
	current, err := s.current(ctx, res.Tags)
	if err != nil {
		return res, err
	}
	published := false
	for _, h := range current {
		published = published || h == d
	}

	// Every image is checked, even under a tag that already names this
	// index: a registry can lose a manifest, and an index whose child is
	// gone is not published.
	var missing []*record.Image
	for _, img := range rel.Images {
		if img.Size, err = pullsize.Of(img.Image); err != nil {
			return res, err
		}
		if img.Digest, err = img.Image.Digest(); err != nil {
			return res, err
		}
		there, err := s.manifest(ctx, img.Digest)
		if err != nil {
			return res, err
		}
		if there == nil {
			missing = append(missing, img)
			if published {
				res.Repaired = append(res.Repaired, img.Platform.String())
			}
		}
		img.Ref = s.ref(img.Digest)
	}
	pushed := len(missing) > 0
	if !dryRun {
		g, gctx := errgroup.WithContext(ctx)
		for _, img := range missing {
			g.Go(func() error { return s.putImage(gctx, img.Image) })
		}
		if err := g.Wait(); err != nil {
			return res, err
		}
	}
	there, err := s.manifest(ctx, d)
	if err != nil {
		return res, err
	}
	if there == nil {
		if !dryRun {
			if err := s.putIndex(ctx, idx); err != nil {
				return res, err
			}
		}
		pushed = true
	}
	res.Unchanged = !pushed

	if hook != nil && !dryRun {
		if err := hook(ctx, res); err != nil {
			return res, fmt.Errorf("before moving tags of %s: %w", s.where(), err)
		}
	}

	return res, moveTags(ctx, s, rel, res, current, func() (v1.ImageIndex, error) { return idx, nil }, dryRun)
}

// moveTags moves each tag of rel that does not point at res.Index yet, and
// may: a shared tag never moves to an index older than the one it points
// at, unless rel allows a rollback. index gives what a tag is put on.
func moveTags(ctx context.Context, s store, rel Release, res *Result, current map[string]v1.Hash, index func() (v1.ImageIndex, error), dryRun bool) error {
	mine := Key{Created: rel.Created, Version: rel.Version}
	keys := map[v1.Hash]Key{}
	var idx v1.ImageIndex
	for _, t := range rel.Tags {
		at, exists := current[t.Name]
		if exists && at == res.Index {
			continue
		}
		if exists && !t.Owned && !rel.AllowRollback {
			k, ok := keys[at]
			if !ok {
				var err error
				if k, err = indexKey(ctx, s, at); err != nil {
					return err
				}
				keys[at] = k
			}
			if k.Newer(mine) {
				res.Kept = append(res.Kept, record.Kept{Tag: t.Name, Index: at, Created: k.Created, Version: k.Version})
				continue
			}
		}
		if !dryRun {
			if idx == nil {
				var err error
				if idx, err = index(); err != nil {
					return err
				}
			}
			if err := s.tag(ctx, t.Name, idx); err != nil {
				return fmt.Errorf("moving tag %s to %s: %w", t.Name, res.Index, err)
			}
		}
		res.Moved = append(res.Moved, t.Name)
	}
	return nil
}

// indexKey reads the ordering key recorded on the manifest d.
func indexKey(ctx context.Context, s store, d v1.Hash) (Key, error) {
	raw, err := s.manifest(ctx, d)
	if err != nil || raw == nil {
		return Key{}, err
	}
	var m struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return Key{}, fmt.Errorf("reading the annotations of %s in %s: %w", d, s.where(), err)
	}
	k := Key{Version: m.Annotations[AnnotationVersion]}
	if c := m.Annotations[AnnotationCreated]; c != "" {
		if k.Created, err = time.Parse(time.RFC3339, c); err != nil {
			return Key{}, fmt.Errorf("%s in %s has an unreadable %s %q: %w", d, s.where(), AnnotationCreated, c, err)
		}
	}
	return k, nil
}
