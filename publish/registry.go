package publish

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/authn/github"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/errgroup"

	retrying "github.com/nothingnesses/agent-images/internal/transport"
)

// Result is what publishing one agent's release did.
type Result struct {
	// Repository is where it went: a registry repository, or "oci:DIR" for a layout.
	Repository string
	Index      v1.Hash
	IndexSize  int64
	Platforms  []PlatformResult
	// Tags point at Index once Publish returns.
	Tags []string
	// Moved are the tags this run changed (the rest already pointed at Index).
	Moved []string
	// Unchanged is true when a tag already pointed at this exact index, so
	// nothing was uploaded.
	Unchanged bool
}

// PlatformResult is one per-arch image as published.
type PlatformResult struct {
	Platform v1.Platform
	Digest   v1.Hash
	// Size is the bytes of its manifest, config and layers.
	Size int64
}

// Hook runs after every image and the index are in the destination and
// before any tag moves; signing happens here. An error stops the release of
// this agent with no tag moved.
type Hook func(ctx context.Context, r *Result) error

// Registry publishes to an OCI registry.
type Registry struct {
	remote []remote.Option
	jobs   int
	mounts *mountTracker
	update func(Progress)
}

// Progress reports bytes pushed for one repository.
type Progress struct {
	Repository string
	Complete   int64
	Total      int64
}

type registryOptions struct {
	keychain  authn.Keychain
	transport http.RoundTripper
	jobs      int
	update    func(Progress)
	mountFrom []name.Repository
}

// RegistryOption configures NewRegistry.
type RegistryOption func(*registryOptions)

// WithKeychain sets where credentials come from (default: the docker config,
// then GITHUB_TOKEN for ghcr.io).
func WithKeychain(k authn.Keychain) RegistryOption {
	return func(o *registryOptions) { o.keychain = k }
}

// WithTransport sets the HTTP transport (default: the shared retrying one).
func WithTransport(t http.RoundTripper) RegistryOption {
	return func(o *registryOptions) { o.transport = t }
}

// WithUploadJobs limits concurrent blob uploads per image.
func WithUploadJobs(n int) RegistryOption { return func(o *registryOptions) { o.jobs = n } }

// WithProgress receives byte counts as blobs upload.
func WithProgress(f func(Progress)) RegistryOption { return func(o *registryOptions) { o.update = f } }

// WithMountFrom names repositories likely to hold layers already (the
// other agents of the same release, pushed by earlier runs or other jobs).
// A layer this run has not pushed itself is offered for mounting from the
// first of them that is not the target; when that repository lacks it, the
// registry starts an ordinary upload in the same request, so a wrong guess
// costs nothing.
func WithMountFrom(repos ...name.Repository) RegistryOption {
	return func(o *registryOptions) { o.mountFrom = append(o.mountFrom, repos...) }
}

// NewRegistry returns a publisher for registries.
func NewRegistry(opts ...RegistryOption) *Registry {
	o := registryOptions{
		keychain: authn.NewMultiKeychain(authn.DefaultKeychain, github.Keychain),
		jobs:     4,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.transport == nil {
		o.transport = retrying.New()
	}
	return &Registry{
		remote: []remote.Option{remote.WithAuthFromKeychain(o.keychain), remote.WithTransport(o.transport), remote.WithJobs(o.jobs)},
		jobs:   o.jobs,
		mounts: &mountTracker{blobs: map[blobKey]*blobUpload{}, fallback: o.mountFrom},
		update: o.update,
	}
}

// RemoteOptions are the options every registry call of this publisher uses,
// for callers (signing, verifying) that must reach the same registry the
// same way.
func (r *Registry) RemoteOptions(ctx context.Context) []remote.Option {
	return append([]remote.Option{remote.WithContext(ctx)}, r.remote...)
}

// Publish pushes rel to repo: each per-arch image by digest, then the index
// by digest, then runs hook, then moves the tags. If a tag already points at
// the very index this release would push, nothing is uploaded and the result
// is Unchanged; tags that do not yet point at it are still moved.
func (r *Registry) Publish(ctx context.Context, repo name.Repository, rel Release, hook Hook) (*Result, error) {
	idx, err := Index(rel.Parts, rel.Annotations)
	if err != nil {
		return nil, fmt.Errorf("assembling the index of %s: %w", rel.Agent, err)
	}
	res, err := describe(repo.String(), idx)
	if err != nil {
		return nil, err
	}
	res.Tags = rel.Tags

	current, err := r.CurrentTags(ctx, repo, rel.Tags)
	if err != nil {
		return nil, err
	}
	for _, d := range current {
		if d == res.Index {
			res.Unchanged = true
		}
	}
	if !res.Unchanged {
		if err := r.pushImages(ctx, repo, rel.Parts); err != nil {
			return nil, err
		}
		ref := repo.Digest(res.Index.String())
		if err := remote.Put(ref, idx, r.RemoteOptions(ctx)...); err != nil {
			return nil, fmt.Errorf("pushing index %s: %w", ref, err)
		}
	}
	if hook != nil {
		if err := hook(ctx, res); err != nil {
			return nil, fmt.Errorf("before moving tags of %s: %w", repo, err)
		}
	}
	for _, t := range rel.Tags {
		if current[t] == res.Index {
			continue
		}
		tag := repo.Tag(t)
		if err := remote.Tag(tag, idx, r.RemoteOptions(ctx)...); err != nil {
			return res, fmt.Errorf("moving tag %s to %s: %w", tag, res.Index, err)
		}
		res.Moved = append(res.Moved, t)
	}
	return res, nil
}

// CurrentTags returns the digest each existing tag points at; tags that do
// not exist are absent from the map.
func (r *Registry) CurrentTags(ctx context.Context, repo name.Repository, tags []string) (map[string]v1.Hash, error) {
	out := map[string]v1.Hash{}
	for _, t := range tags {
		desc, err := remote.Head(repo.Tag(t), r.RemoteOptions(ctx)...)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading tag %s: %w", repo.Tag(t), err)
		}
		out[t] = desc.Digest
	}
	return out, nil
}

// pushImages pushes each part by digest, in parallel.
func (r *Registry) pushImages(ctx context.Context, repo name.Repository, parts []Part) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(len(parts))
	for _, p := range parts {
		g.Go(func() error {
			_, err := r.PushImage(ctx, repo, p.Image)
			return err
		})
	}
	return g.Wait()
}

// PushImage pushes one image to repo by digest. Blobs the repository has are
// skipped (HEAD first). A layer that another push of this publisher has put
// in, or is uploading to, another repository of the same registry is
// mounted from there, after waiting for that upload to finish, so layers
// shared by several agents cross the wire once.
func (r *Registry) PushImage(ctx context.Context, repo name.Repository, img v1.Image) (name.Digest, error) {
	d, err := img.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	ref := repo.Digest(d.String())
	opts := r.RemoteOptions(ctx)
	// A manifest is only accepted once its blobs are there, so an image
	// whose manifest exists is complete.
	if _, err := remote.Head(ref, opts...); err == nil {
		return ref, nil
	} else if !isNotFound(err) {
		return name.Digest{}, fmt.Errorf("checking %s: %w", ref, err)
	}
	var updates chan v1.Update
	done := make(chan struct{})
	if r.update != nil {
		updates = make(chan v1.Update, 16)
		opts = append(opts, remote.WithProgress(updates))
		go func() {
			defer close(done)
			for u := range updates {
				r.update(Progress{Repository: repo.String(), Complete: u.Complete, Total: u.Total})
			}
		}()
	} else {
		close(done)
	}
	err = r.push(ctx, repo, ref, img, opts)
	if updates != nil {
		close(updates)
	}
	<-done
	if err != nil {
		return name.Digest{}, fmt.Errorf("pushing %s: %w", ref, err)
	}
	return ref, nil
}

// push uploads img's layers through the mount tracker, then its config,
// then its manifest, with one Pusher so the registry is not asked twice
// about a blob.
func (r *Registry) push(ctx context.Context, repo name.Repository, ref name.Digest, img v1.Image, opts []remote.Option) error {
	p, err := remote.NewPusher(opts...)
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	config, err := partial.ConfigLayer(img)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.jobs)
	for _, l := range layers {
		g.Go(func() error { return r.mounts.upload(gctx, p, repo, l) })
	}
	// Configs are one per image: nothing to share.
	g.Go(func() error { return p.Upload(gctx, repo, config) })
	if err := g.Wait(); err != nil {
		return err
	}
	return p.Put(ctx, ref, img)
}

func describe(repo string, idx v1.ImageIndex) (*Result, error) {
	d, err := idx.Digest()
	if err != nil {
		return nil, err
	}
	size, err := idx.Size()
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	res := &Result{Repository: repo, Index: d, IndexSize: size}
	for _, desc := range m.Manifests {
		img, err := idx.Image(desc.Digest)
		if err != nil {
			return nil, err
		}
		total, err := imageSize(img)
		if err != nil {
			return nil, err
		}
		res.Platforms = append(res.Platforms, PlatformResult{Platform: *desc.Platform, Digest: desc.Digest, Size: total})
	}
	return res, nil
}

func imageSize(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	total, err := img.Size()
	if err != nil {
		return 0, err
	}
	total += m.Config.Size
	for _, l := range m.Layers {
		total += l.Size
	}
	return total, nil
}

func isNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}

// mountTracker makes each blob cross the wire once per registry: the first
// push that needs a blob uploads it, and every other push of it, to another
// repository, waits for that upload and mounts the blob from there. A blob
// is only offered for mounting once its upload finished; if the upload
// failed, the next push that needs it uploads it instead.
type mountTracker struct {
	mu       sync.Mutex
	blobs    map[blobKey]*blobUpload
	fallback []name.Repository
}

type blobKey struct {
	registry string
	digest   v1.Hash
}

// blobUpload is one upload of a blob to repo; done closes when it ends, and
// failed (written before done closes) says how.
type blobUpload struct {
	repo   name.Repository
	done   chan struct{}
	failed bool
}

// upload puts layer l into repo through p, uploading it, mounting it, or
// finding it there already.
func (m *mountTracker) upload(ctx context.Context, p *remote.Pusher, repo name.Repository, l v1.Layer) error {
	d, err := l.Digest()
	if err != nil {
		return err
	}
	key := blobKey{registry: repo.RegistryStr(), digest: d}
	for {
		m.mu.Lock()
		b, ok := m.blobs[key]
		if !ok || b.failed {
			// Nobody has it, or the last try failed: this push uploads it.
			b = &blobUpload{repo: repo, done: make(chan struct{})}
			m.blobs[key] = b
			m.mu.Unlock()
			err := p.Upload(ctx, repo, m.guess(repo, l, d))
			m.mu.Lock()
			b.failed = err != nil
			m.mu.Unlock()
			close(b.done)
			return err
		}
		m.mu.Unlock()
		select {
		case <-b.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if b.failed {
			continue
		}
		if b.repo.String() == repo.String() {
			return nil
		}
		return p.Upload(ctx, repo, &remote.MountableLayer{Layer: l, Reference: b.repo.Digest(d.String())})
	}
}

// guess offers a blob nobody in this run has pushed for mounting from the
// first WithMountFrom repository other than repo, where an earlier run or
// another job may have put it; when it is not there, the registry starts an
// ordinary upload in the same request, so a wrong guess costs nothing.
func (m *mountTracker) guess(repo name.Repository, l v1.Layer, d v1.Hash) v1.Layer {
	for _, from := range m.fallback {
		if from.String() != repo.String() && from.RegistryStr() == repo.RegistryStr() {
			return &remote.MountableLayer{Layer: l, Reference: from.Digest(d.String())}
		}
	}
	return l
}

// StagingTag is the tag a split-mode build records its per-arch image under,
// so that merge finds it without job outputs: the same key and platform
// always give the same tag.
func StagingTag(key string, p v1.Platform) string {
	return SafeTag(fmt.Sprintf("staging-%s-%s-%s", key, p.OS, p.Architecture))
}

// Stage pushes one per-arch image by digest and points its staging tag at it.
func (r *Registry) Stage(ctx context.Context, repo name.Repository, key string, p Part) (*PlatformResult, error) {
	ref, err := r.PushImage(ctx, repo, p.Image)
	if err != nil {
		return nil, err
	}
	tag := repo.Tag(StagingTag(key, p.Platform))
	if err := remote.Tag(tag, p.Image, r.RemoteOptions(ctx)...); err != nil {
		return nil, fmt.Errorf("recording %s as %s: %w", ref, tag, err)
	}
	size, err := imageSize(p.Image)
	if err != nil {
		return nil, err
	}
	d, _ := p.Image.Digest()
	return &PlatformResult{Platform: p.Platform, Digest: d, Size: size}, nil
}

// StagedPart is a per-arch image found under its staging tag.
type StagedPart struct {
	Part
	Tag name.Tag
}

// Staged fetches the per-arch images staged under key for each platform.
// Every missing platform is named in one error, with the tag merge looked for.
func (r *Registry) Staged(ctx context.Context, repo name.Repository, key string, platforms []v1.Platform) ([]StagedPart, error) {
	var parts []StagedPart
	var missing []string
	for _, p := range platforms {
		tag := repo.Tag(StagingTag(key, p))
		img, err := remote.Image(tag, r.RemoteOptions(ctx)...)
		if isNotFound(err) {
			missing = append(missing, fmt.Sprintf("%s (no %s)", p, tag))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading staged image %s: %w", tag, err)
		}
		parts = append(parts, StagedPart{Part: Part{Platform: p, Image: img}, Tag: tag})
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("per-arch images missing for %s: %s; run `release build --push` for those systems with the same staging key first", repo, strings.Join(missing, ", "))
	}
	return parts, nil
}
