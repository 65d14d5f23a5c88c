package transport

import (
	"context"
	"fmt"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
)

// blobs is what this client learnt of which repository holds which blob:
// each (repository, digest) is asked about once, however many images name
// it and whichever of publishing, signing or verifying asks, and a blob
// this client put somewhere is known to be there without asking.
type blobs struct {
	mu    sync.Mutex
	known map[blobKey]*blobCheck
	// holders are the repositories known to have each blob.
	holders map[v1.Hash][]name.Repository
	// uploads are the uploads under way, keyed by registry (not
	// repository) and digest: a blob crosses the wire once per registry.
	uploads map[blobKey]*blobCheck
	// pushers are the clients of the repositories this run writes to.
	pushers map[string]*pusher
}

type blobKey struct {
	repo   string
	digest v1.Hash
}

// blobCheck is one question to the registry, or one put; done closes when
// there is an answer.
type blobCheck struct {
	done  chan struct{}
	there bool
	err   error
}

// HasBlob reports whether repo has the blob d. The registry is asked once
// per (repository, digest) for the life of r, which is one run: a blob does
// not come or go during a run except by this run's own puts (PutBlob).
// Callers asking at once share the one question; a failed question is
// asked again by the next caller.
func (r *Registry) HasBlob(ctx context.Context, repo name.Repository, d v1.Hash) (bool, error) {
	key := blobKey{repo.String(), d}
	r.blobs.mu.Lock()
	if c, ok := r.blobs.known[key]; ok {
		r.blobs.mu.Unlock()
		if err := wait(ctx, c); err != nil {
			return false, err
		}
		if c.err == nil {
			return c.there, nil
		}
		return r.HasBlob(ctx, repo, d)
	}
	c := &blobCheck{done: make(chan struct{})}
	r.blobs.known[key] = c
	r.blobs.mu.Unlock()
	there, err := r.askBlob(ctx, repo.Digest(d.String()))
	r.settle(repo, d, c, there, err)
	return there, err
}

func (r *Registry) askBlob(ctx context.Context, ref name.Digest) (bool, error) {
	l, err := r.reader.Layer(ctx, ref)
	if err != nil {
		return false, err
	}
	ok, err := partial.Exists(l)
	if err != nil {
		return false, fmt.Errorf("checking blob %s: %w", ref, err)
	}
	return ok, nil
}

// claim makes this caller the one that puts the blob d into repo, and
// returns its entry of known; nil when repo has the blob. asked is true
// when the registry already said repo lacks it.
func (r *Registry) claim(ctx context.Context, repo name.Repository, d v1.Hash) (mine *blobCheck, asked bool, err error) {
	key := blobKey{repo.String(), d}
	for {
		r.blobs.mu.Lock()
		c, ok := r.blobs.known[key]
		if !ok || (isDone(c) && c.err == nil && !c.there) {
			mine = &blobCheck{done: make(chan struct{})}
			r.blobs.known[key] = mine
			r.blobs.mu.Unlock()
			return mine, ok, nil
		}
		r.blobs.mu.Unlock()
		if err := wait(ctx, c); err != nil {
			return nil, false, err
		}
		if c.err == nil && c.there {
			return nil, false, nil
		}
	}
}

// settle records the answer c about the blob d in repo: there, absent, or
// err, which the next caller asks or tries again.
func (r *Registry) settle(repo name.Repository, d v1.Hash, c *blobCheck, there bool, err error) {
	key := blobKey{repo.String(), d}
	r.blobs.mu.Lock()
	c.there, c.err = there, err
	switch {
	case err != nil && r.blobs.known[key] == c:
		delete(r.blobs.known, key)
	case err == nil && there:
		r.blobs.holders[d] = append(r.blobs.holders[d], repo)
	}
	if at := (blobKey{repo.RegistryStr(), d}); r.blobs.uploads[at] == c {
		delete(r.blobs.uploads, at)
	}
	r.blobs.mu.Unlock()
	close(c.done)
}

// holder is a repository of repo's registry, other than repo, known to
// have the blob d. r.blobs.mu is held.
func (r *Registry) holder(repo name.Repository, d v1.Hash) (holder name.Repository, ok bool) {
	for _, h := range r.blobs.holders[d] {
		if h.String() != repo.String() && h.RegistryStr() == repo.RegistryStr() {
			return h, true
		}
	}
	return name.Repository{}, false
}

func isDone(c *blobCheck) bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func wait(ctx context.Context, c *blobCheck) error {
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
