package publish

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	regerr "github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/errgroup"

	"github.com/nothingnesses/agent-images/internal/transport"
	"github.com/nothingnesses/agent-images/record"
	"github.com/nothingnesses/agent-images/tags"
)

// Registry publishes to an OCI registry: each agent to <prefix>/<agent>.
type Registry struct {
	prefix Prefix
	client *transport.Registry
	update func(Progress)
	// mountFrom are where a blob this run has not seen is offered from.
	mountFrom []name.Repository
}

// Progress reports bytes pushed for one repository.
type Progress struct {
	Repository string
	Complete   int64
	Total      int64
}

// RegistryOption configures NewRegistry.
type RegistryOption func(*Registry)

// WithProgress receives byte counts as blobs upload.
func WithProgress(f func(Progress)) RegistryOption { return func(r *Registry) { r.update = f } }

// WithMountFrom names repositories likely to hold layers already (the
// other agents of the same release, pushed by earlier runs or other jobs).
// A layer this run has not pushed itself is offered for mounting from the
// first of them that is not the target; when that repository lacks it, the
// registry starts an ordinary upload in the same request, so a wrong guess
// costs nothing.
func WithMountFrom(repos ...name.Repository) RegistryOption {
	return func(r *Registry) { r.mountFrom = append(r.mountFrom, repos...) }
}

// NewRegistry returns the publisher of agents under prefix, reaching the
// registry through client.
func NewRegistry(prefix Prefix, client *transport.Registry, opts ...RegistryOption) *Registry {
	r := &Registry{prefix: prefix, client: client}
	for _, opt := range opts {
		opt(r)
	}
	return r
}

// Put pushes rel to <prefix>/<agent>: each per-arch image by digest that
// the repository lacks, then the index by digest.
func (r *Registry) Put(ctx context.Context, rel Release, dryRun bool) (*Result, error) {
	s, err := r.store(ctx, rel.Agent)
	if err != nil {
		return nil, err
	}
	return put(ctx, s, rel, dryRun)
}

// MoveTags moves the tags of rel that may move to index.
func (r *Registry) MoveTags(ctx context.Context, rel Release, index v1.Hash, dryRun bool) (*Moves, error) {
	s, err := r.store(ctx, rel.Agent)
	if err != nil {
		return nil, err
	}
	return moveTags(ctx, s, rel, index, dryRun)
}

// Published reads the index <prefix>/<agent>:latest and checks that each of
// its images is there.
func (r *Registry) Published(ctx context.Context, agent string) (*Published, error) {
	s, err := r.store(ctx, agent)
	if err != nil {
		return nil, err
	}
	return readPublished(ctx, s)
}

func (r *Registry) store(ctx context.Context, agent string) (*repoStore, error) {
	repo, err := r.prefix.Repository(agent)
	if err != nil {
		return nil, err
	}
	// The client's one puller makes every read: the registry is pinged
	// and the repository's token fetched once a run.
	return &repoStore{r: r, repo: repo, reads: r.client.Options(ctx)}, nil
}

// repoStore is one repository of a registry.
type repoStore struct {
	r    *Registry
	repo name.Repository
	// reads are the options of every read.
	reads []remote.Option
}

func (s *repoStore) where() string             { return s.repo.String() }
func (s *repoStore) ref(d v1.Hash) name.Digest { return s.repo.Digest(d.String()) }

func (s *repoStore) current(ctx context.Context, tags []string) (map[string]v1.Hash, error) {
	out := map[string]v1.Hash{}
	for _, t := range tags {
		desc, err := remote.Head(s.repo.Tag(t), s.reads...)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading tag %s: %w", s.repo.Tag(t), err)
		}
		out[t] = desc.Digest
	}
	return out, nil
}

func (s *repoStore) manifest(ctx context.Context, d v1.Hash) ([]byte, error) {
	desc, err := remote.Get(s.ref(d), s.reads...)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", s.ref(d), err)
	}
	return desc.Manifest, nil
}

func (s *repoStore) hasBlob(ctx context.Context, d v1.Hash) (bool, error) {
	return s.r.client.HasBlob(ctx, s.repo, d)
}

// putImage uploads an image put found missing: it asked already.
func (s *repoStore) putImage(ctx context.Context, img v1.Image) error {
	d, err := img.Digest()
	if err != nil {
		return err
	}
	return s.r.upload(ctx, s.repo, s.ref(d), img)
}

func (s *repoStore) putIndex(ctx context.Context, idx v1.ImageIndex) error {
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	if err := s.r.client.PutManifest(ctx, s.ref(d), idx); err != nil {
		return fmt.Errorf("pushing index %s: %w", s.ref(d), err)
	}
	return nil
}

func (s *repoStore) index(ctx context.Context, d v1.Hash) (v1.ImageIndex, error) {
	idx, err := remote.Index(s.ref(d), s.reads...)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", s.ref(d), err)
	}
	return idx, nil
}

func (s *repoStore) tag(ctx context.Context, tag string, idx v1.ImageIndex) error {
	return s.r.client.PutManifest(ctx, s.repo.Tag(tag), idx)
}

// upload puts img's layers and config into repo, reporting their progress,
// then its manifest.
func (r *Registry) upload(ctx context.Context, repo name.Repository, ref name.Digest, img v1.Image) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	config, err := partial.ConfigLayer(img)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	p := Progress{Repository: repo.String()}
	report := func(total, complete int64) {
		mu.Lock()
		defer mu.Unlock()
		p.Total, p.Complete = p.Total+total, p.Complete+complete
		if r.update != nil {
			r.update(p)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(blobsAtOnce)
	for _, l := range append(layers, config) {
		g.Go(func() error {
			size, err := l.Size()
			if err != nil {
				return err
			}
			report(size, 0)
			// A blob mounted or already there counts as sent once put.
			var n atomic.Int64
			err = r.client.PutBlob(gctx, repo, l, r.mountFrom, func(k int64) { report(0, k); n.Add(k) })
			if err == nil {
				report(0, size-n.Load())
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	if err := r.client.PutManifest(ctx, ref, img); err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	return nil
}

// blobsAtOnce is how many blobs of one image are put at once (as many as
// go-containerregistry's own pushes); several images are pushed beside it.
const blobsAtOnce = 4

func isNotFound(err error) bool {
	var te *regerr.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}

// Stage pushes one per-arch image by digest to its agent's repository,
// each blob only where it is missing, and points its staging tag at it.
func (r *Registry) Stage(ctx context.Context, img *record.Image, key string) (name.Digest, error) {
	s, err := r.store(ctx, img.Agent)
	if err != nil {
		return name.Digest{}, err
	}
	d, err := img.Image.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	ref := s.ref(d)
	// A manifest is only accepted once its blobs are there, so an image
	// whose manifest exists is complete.
	if _, err = remote.Head(ref, s.reads...); isNotFound(err) {
		err = r.upload(ctx, s.repo, ref, img.Image)
	} else if err != nil {
		err = fmt.Errorf("checking %s: %w", ref, err)
	}
	if err != nil {
		return name.Digest{}, err
	}
	tag := s.repo.Tag(tags.StagingTag(key, img.Platform))
	if err := r.client.PutManifest(ctx, tag, img.Image); err != nil {
		return name.Digest{}, fmt.Errorf("recording %s as %s: %w", ref, tag, err)
	}
	return ref, nil
}

// Staged returns the digest the staging tag of agent's platform p points
// at, and the tag; ok is false when there is no such tag.
func (r *Registry) Staged(ctx context.Context, agent, key string, p v1.Platform) (d v1.Hash, tag name.Tag, ok bool, err error) {
	s, err := r.store(ctx, agent)
	if err != nil {
		return v1.Hash{}, name.Tag{}, false, err
	}
	tag = s.repo.Tag(tags.StagingTag(key, p))
	current, err := s.current(ctx, []string{tag.TagStr()})
	d, ok = current[tag.TagStr()]
	return d, tag, ok, err
}

// Image reads an image by digest.
func (r *Registry) Image(ctx context.Context, ref name.Digest) (v1.Image, error) {
	img, err := remote.Image(ref, r.client.Options(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", ref, err)
	}
	return img, nil
}
