package publish

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
)

// Layout publishes to a local OCI image layout, the destination of a release
// without --push. Each tag becomes a ref.name "<agent>:<tag>" on the index,
// which podman and skopeo read as oci:DIR:<agent>:<tag>.
type Layout struct {
	dir  string
	mu   sync.Mutex
	path layout.Path
}

// OpenLayout opens the layout at dir, creating an empty one if there is none.
func OpenLayout(dir string) (*Layout, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("opening OCI layout %s: %w", dir, err)
		}
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return nil, err
		}
		p, err = layout.Write(dir, empty.Index)
		if err != nil {
			return nil, fmt.Errorf("creating OCI layout %s: %w", dir, err)
		}
	}
	return &Layout{dir: dir, path: p}, nil
}

// RefName is the ref.name annotation a tag of an agent gets in the layout.
func RefName(agent, tag string) string { return agent + ":" + tag }

// Publish writes rel's images and index into the layout (blobs already
// there are not written again) and points each tag's ref.name at the index.
// Unchanged is true when the first tag already pointed at this index.
func (l *Layout) Publish(ctx context.Context, rel Release, hook Hook) (*Result, error) {
	idx, err := Index(rel.Parts, rel.Annotations)
	if err != nil {
		return nil, fmt.Errorf("assembling the index of %s: %w", rel.Agent, err)
	}
	res, err := describe("oci:"+l.dir, idx)
	if err != nil {
		return nil, err
	}
	res.Tags = rel.Tags

	l.mu.Lock()
	defer l.mu.Unlock()
	current, err := l.current()
	if err != nil {
		return nil, err
	}
	for _, t := range rel.Tags {
		if current[RefName(rel.Agent, t)] == res.Index {
			res.Unchanged = true
		}
	}
	if !res.Unchanged {
		if err := l.path.WriteIndex(idx); err != nil {
			return nil, fmt.Errorf("writing %s into %s: %w", rel.Agent, l.dir, err)
		}
	}
	if hook != nil {
		if err := hook(ctx, res); err != nil {
			return nil, fmt.Errorf("before tagging %s in %s: %w", rel.Agent, l.dir, err)
		}
	}
	for _, t := range rel.Tags {
		ref := RefName(rel.Agent, t)
		if current[ref] == res.Index {
			continue
		}
		err := l.path.ReplaceIndex(idx, match.Annotation(AnnotationRefName, ref),
			layout.WithAnnotations(map[string]string{AnnotationRefName: ref}))
		if err != nil {
			return res, fmt.Errorf("tagging %s in %s: %w", ref, l.dir, err)
		}
		res.Moved = append(res.Moved, t)
	}
	return res, nil
}

// current maps each ref.name in the layout to the digest it names.
func (l *Layout) current() (map[string]v1.Hash, error) {
	ii, err := l.path.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", l.dir, err)
	}
	m, err := ii.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", l.dir, err)
	}
	out := map[string]v1.Hash{}
	for _, d := range m.Manifests {
		if ref := d.Annotations[AnnotationRefName]; ref != "" {
			out[ref] = d.Digest
		}
	}
	return out, nil
}
