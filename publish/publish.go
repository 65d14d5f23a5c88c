package publish

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"golang.org/x/sync/errgroup"

	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/tags"
)

// Publisher puts one agent's release somewhere: a registry (Registry) or a
// local OCI image layout (Layout). A release is Put, then signed by the
// caller, then its tags are moved: nothing runs inside another.
type Publisher interface {
	// Put makes sure every image of rel and its index are there and says
	// what that took. With dryRun it reads what a release reads and
	// writes nothing. On an error the Result, when there is one, says
	// where and what was known by then.
	Put(ctx context.Context, rel Release, dryRun bool) (*Result, error)
	// MoveTags moves rel's tags to index (a Put's), none of them
	// backwards, and says which moved and which were kept.
	MoveTags(ctx context.Context, rel Release, index v1.Hash, dryRun bool) (*Moves, error)
	// Published is the agent's index that latest points at, with its
	// images checked to be there; nil when there is none.
	Published(ctx context.Context, agent string) (*Published, error)
}

// Result is what putting one agent's release did (or, in a dry run, would do).
type Result struct {
	// Repository is where it went: a registry repository, or "oci:DIR" for a layout.
	Repository string
	Index      v1.Hash
	IndexSize  int64
	// Ref is the index by digest in a registry; zero in a layout.
	Ref name.Digest
	// Repaired are the platforms whose image was missing although a tag
	// already pointed at this index.
	Repaired []string
	// Unchanged is true when this index and every image in it were already
	// there, so nothing was uploaded.
	Unchanged bool
}

// Moves is what moving a release's tags did.
type Moves struct {
	// Moved are the tags this run changed (the rest already pointed at the index).
	Moved []string
	// Kept are the tags left at a newer index.
	Kept []record.Kept
}

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
	hasBlob(ctx context.Context, d v1.Hash) (bool, error)
	putImage(ctx context.Context, img v1.Image) error
	putIndex(ctx context.Context, idx v1.ImageIndex) error
	index(ctx context.Context, d v1.Hash) (v1.ImageIndex, error)
	tag(ctx context.Context, tag string, idx v1.ImageIndex) error
}

// put is the order of every release, in a registry or a layout: the
// per-arch images the store lacks, then the index. A reused index is
// already there, and nothing is written.
func put(ctx context.Context, s store, rel Release, dryRun bool) (*Result, error) {
	if p := rel.Reuse; p != nil {
		return &Result{Repository: s.where(), Index: p.Index, IndexSize: p.Size, Ref: p.Ref, Unchanged: true}, nil
	}
	res := &Result{Repository: s.where()}
	idx, err := Index(rel)
	if err != nil {
		return res, fmt.Errorf("assembling the index of %s: %w", rel.Agent, err)
	}
	desc, err := partial.Descriptor(idx)
	if err != nil {
		return res, err
	}
	d := desc.Digest
	res.Index, res.IndexSize, res.Ref = d, desc.Size, s.ref(d)
	current, err := s.current(ctx, tags.Names(rel.Tags))
	if err != nil {
		return res, err
	}
	published := slices.Contains(slices.Collect(maps.Values(current)), d)

	// Every image is checked, even under a tag that already names this
	// index: a registry can lose a manifest, and an index whose child is
	// gone is not published.
	var missing []v1.Image
	for _, img := range rel.Images {
		_, there, err := complete(ctx, s, img.Digest)
		if err != nil {
			return res, err
		}
		if !there {
			missing = append(missing, img.Image)
			if published {
				res.Repaired = append(res.Repaired, img.Platform.String())
			}
		}
	}
	pushed := len(missing) > 0
	if !dryRun {
		g, gctx := errgroup.WithContext(ctx)
		for _, img := range missing {
			g.Go(func() error { return s.putImage(gctx, img) })
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
	return res, nil
}

// complete reports whether the image manifest d (raw) is there with every
// blob it names: a registry can lose a layer while the manifest stays, and an
// image that cannot be pulled is not published.
func complete(ctx context.Context, s store, d v1.Hash) (raw []byte, ok bool, err error) {
	if raw, err = s.manifest(ctx, d); err != nil || raw == nil {
		return nil, false, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, false, fmt.Errorf("reading %s in %s: %w", d, s.where(), err)
	}
	blobs := []v1.Hash{m.Config.Digest}
	for _, l := range m.Layers {
		blobs = append(blobs, l.Digest)
	}
	there := make([]bool, len(blobs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for i, b := range blobs {
		g.Go(func() (err error) {
			there[i], err = s.hasBlob(gctx, b)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, false, err
	}
	return raw, !slices.Contains(there, false), nil
}

// moveTags moves each tag of rel that does not point at index yet, and may:
// a shared tag never moves to an index older than the one it points at (one
// of ours: rel.Ours), unless rel allows a rollback. A reused index gets the
// tags that are not Built, ordered by its own version and time (it is the
// release it was).
func moveTags(ctx context.Context, s store, rel Release, index v1.Hash, dryRun bool) (*Moves, error) {
	mine := tags.Key{Created: rel.Created, Version: rel.Version}
	read := func() (v1.ImageIndex, error) { return Index(rel) }
	if p := rel.Reuse; p != nil {
		rel.Tags, mine = rel.Moving(), p.Key
		read = func() (v1.ImageIndex, error) { return s.index(ctx, p.Index) }
	}
	keys := map[v1.Hash]tags.Key{}
	ours := map[v1.Hash]bool{}
	isOurs := func(at v1.Hash) bool {
		if rel.Ours == nil {
			return true
		}
		if _, ok := ours[at]; !ok {
			ours[at] = rel.Ours(ctx, s.ref(at))
		}
		return ours[at]
	}
	m := &Moves{}
	var idx v1.ImageIndex
	for _, t := range rel.Tags {
		// Read just before the tag moves: another release may have moved
		// it since this one began.
		current, err := s.current(ctx, []string{t.Name})
		if err != nil {
			return m, err
		}
		at, exists := current[t.Name]
		if exists && at == index {
			continue
		}
		if exists && !t.Owned && !rel.AllowRollback && isOurs(at) {
			k, ok := keys[at]
			if !ok {
				if k, err = indexKey(ctx, s, at); err != nil {
					return m, err
				}
				keys[at] = k
			}
			if k.Newer(mine) {
				m.Kept = append(m.Kept, record.Kept{Tag: t.Name, Index: at, Created: k.Created, Version: k.Version})
				continue
			}
		}
		if !dryRun {
			if idx == nil {
				if idx, err = read(); err != nil {
					return m, err
				}
			}
			if err := s.tag(ctx, t.Name, idx); err != nil {
				return m, fmt.Errorf("moving tag %s to %s: %w", t.Name, index, err)
			}
		}
		m.Moved = append(m.Moved, t.Name)
	}
	return m, nil
}

// indexKey reads the ordering key recorded on the manifest d.
func indexKey(ctx context.Context, s store, d v1.Hash) (tags.Key, error) {
	raw, err := s.manifest(ctx, d)
	if err != nil || raw == nil {
		return tags.Key{}, err
	}
	// An image's manifest reads as an index's: both have annotations.
	m, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return tags.Key{}, fmt.Errorf("reading the annotations of %s in %s: %w", d, s.where(), err)
	}
	return keyOf(s, d, m.Annotations)
}

// keyOf is the ordering key in the annotations a of the manifest d.
func keyOf(s store, d v1.Hash, a map[string]string) (k tags.Key, err error) {
	k.Version = a[AnnotationVersion]
	if c := a[AnnotationCreated]; c != "" {
		if k.Created, err = time.Parse(time.RFC3339, c); err != nil {
			return tags.Key{}, fmt.Errorf("%s in %s has an unreadable %s %q: %w", d, s.where(), AnnotationCreated, c, err)
		}
	}
	return k, nil
}
