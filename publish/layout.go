package publish

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
)

// Layout publishes to a local OCI image layout, the destination of a release
// without --push. Each tag becomes a ref.name "<agent>:<tag>" on the index,
// which podman and skopeo read as oci:DIR:<agent>:<tag>. The layout is
// created by the first write: reading one that does not exist finds
// nothing, so planning against it leaves no directory behind.
type Layout struct {
	dir layout.Path
	// mu serialises the agents of one release: index.json is one file.
	mu sync.Mutex
	// write serialises the writes of one agent's images, which publish
	// makes at once (a registry takes them in parallel; files do not).
	write sync.Mutex
}

// NewLayout is the layout at dir.
func NewLayout(dir string) *Layout { return &Layout{dir: layout.Path(dir)} }

// refName is the ref.name annotation a tag of an agent gets in the layout.
func refName(agent, tag string) string { return agent + ":" + tag }

// Put writes rel's images and index into the layout (blobs already there
// are not written again).
func (l *Layout) Put(ctx context.Context, rel Release, dryRun bool) (*Result, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return put(ctx, &layoutStore{l: l, agent: rel.Agent}, rel, dryRun)
}

// MoveTags points each tag's ref.name at index.
func (l *Layout) MoveTags(ctx context.Context, rel Release, index v1.Hash, dryRun bool) (*Moves, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return moveTags(ctx, &layoutStore{l: l, agent: rel.Agent}, rel, index, dryRun)
}

// Published reads the index the agent's latest ref.name points at, and
// checks that each of its images is in the layout.
func (l *Layout) Published(ctx context.Context, agent string) (*Published, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return readPublished(ctx, &layoutStore{l: l, agent: agent})
}

// create makes the layout, before its first write.
func (l *Layout) create() error {
	_, err := os.Stat(filepath.Join(string(l.dir), "index.json"))
	if errors.Is(err, os.ErrNotExist) {
		_, err = layout.Write(string(l.dir), empty.Index)
	}
	if err != nil {
		return fmt.Errorf("creating OCI layout %s: %w", l.dir, err)
	}
	return nil
}

// layoutStore is one agent's part of a layout.
type layoutStore struct {
	l     *Layout
	agent string
}

func (s *layoutStore) where() string           { return "oci:" + string(s.l.dir) }
func (s *layoutStore) ref(v1.Hash) name.Digest { return name.Digest{} }

func (s *layoutStore) current(_ context.Context, tags []string) (map[string]v1.Hash, error) {
	out := map[string]v1.Hash{}
	ii, err := s.l.dir.ImageIndex()
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	var m *v1.IndexManifest
	if err == nil {
		m, err = ii.IndexManifest()
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", s.l.dir, err)
	}
	want := map[string]string{}
	for _, t := range tags {
		want[refName(s.agent, t)] = t
	}
	for _, d := range m.Manifests {
		if t, ok := want[d.Annotations[AnnotationRefName]]; ok {
			out[t] = d.Digest
		}
	}
	return out, nil
}

func (s *layoutStore) manifest(_ context.Context, d v1.Hash) ([]byte, error) {
	raw, err := s.l.dir.Bytes(d)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s from %s: %w", d, s.l.dir, err)
	}
	return raw, nil
}

func (s *layoutStore) hasBlob(_ context.Context, d v1.Hash) (bool, error) {
	_, err := os.Stat(filepath.Join(string(s.l.dir), "blobs", d.Algorithm, d.Hex))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func (s *layoutStore) putImage(_ context.Context, img v1.Image) error {
	s.l.write.Lock()
	defer s.l.write.Unlock()
	if err := s.l.create(); err != nil {
		return err
	}
	if err := s.l.dir.WriteImage(img); err != nil {
		return fmt.Errorf("writing an image of %s into %s: %w", s.agent, s.l.dir, err)
	}
	return nil
}

func (s *layoutStore) putIndex(_ context.Context, idx v1.ImageIndex) error {
	if err := s.l.create(); err != nil {
		return err
	}
	if err := s.l.dir.WriteIndex(idx); err != nil {
		return fmt.Errorf("writing %s into %s: %w", s.agent, s.l.dir, err)
	}
	return nil
}

func (s *layoutStore) index(_ context.Context, d v1.Hash) (v1.ImageIndex, error) {
	root, err := s.l.dir.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", s.l.dir, err)
	}
	idx, err := root.ImageIndex(d)
	if err != nil {
		return nil, fmt.Errorf("reading %s from %s: %w", d, s.l.dir, err)
	}
	return idx, nil
}

func (s *layoutStore) tag(_ context.Context, tag string, idx v1.ImageIndex) error {
	if err := s.l.create(); err != nil {
		return err
	}
	ref := refName(s.agent, tag)
	if err := s.l.dir.ReplaceIndex(idx, match.Annotation(AnnotationRefName, ref),
		layout.WithAnnotations(map[string]string{AnnotationRefName: ref})); err != nil {
		return fmt.Errorf("tagging %s in %s: %w", ref, s.l.dir, err)
	}
	return nil
}
