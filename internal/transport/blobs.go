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
}

type blobKey struct {
	repo   string
	digest v1.Hash
}

// blobCheck is one question to the registry; done closes when there is
// an answer.
type blobCheck struct {
	done  chan struct{}
	there bool
	err   error
}

// HasBlob reports whether repo has the blob d. The registry is asked once
// per (repository, digest) for the life of r, which is one run: a blob does
// not come or go during a run except by this run's own pushes, which Uploaded
// records. Callers asking at once share the one question; a failed
// question is asked again by the next caller.
func (r *Registry) HasBlob(ctx context.Context, repo name.Repository, d v1.Hash) (bool, error) {
	key := blobKey{repo.String(), d}
	r.blobs.mu.Lock()
	if c, ok := r.blobs.known[key]; ok {
		r.blobs.mu.Unlock()
		select {
		case <-c.done:
		case <-ctx.Done():
			return false, ctx.Err()
		}
		if c.err == nil {
			return c.there, nil
		}
		return r.HasBlob(ctx, repo, d)
	}
	c := &blobCheck{done: make(chan struct{})}
	r.blobs.known[key] = c
	r.blobs.mu.Unlock()

	c.there, c.err = r.askBlob(ctx, repo.Digest(d.String()))
	r.blobs.mu.Lock()
	switch {
	case c.err != nil && r.blobs.known[key] == c:
		delete(r.blobs.known, key)
	case c.err == nil && c.there:
		r.blobs.holders[d] = append(r.blobs.holders[d], repo)
	}
	r.blobs.mu.Unlock()
	close(c.done)
	return c.there, c.err
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

// Uploaded records that repo has the blob d: this run uploaded or mounted
// it there.
func (r *Registry) Uploaded(repo name.Repository, d v1.Hash) {
	c := &blobCheck{done: make(chan struct{}), there: true}
	close(c.done)
	r.blobs.mu.Lock()
	defer r.blobs.mu.Unlock()
	r.blobs.known[blobKey{repo.String(), d}] = c
	r.blobs.holders[d] = append(r.blobs.holders[d], repo)
}

// KnownBlob reports whether this run knows, without asking, that repo has
// the blob d.
func (r *Registry) KnownBlob(repo name.Repository, d v1.Hash) bool {
	r.blobs.mu.Lock()
	c, ok := r.blobs.known[blobKey{repo.String(), d}]
	r.blobs.mu.Unlock()
	if !ok {
		return false
	}
	select {
	case <-c.done:
		return c.err == nil && c.there
	default:
		return false
	}
}

// Holder returns a repository of repo's registry, other than repo, known
// to have the blob d; ok is false when none is.
func (r *Registry) Holder(repo name.Repository, d v1.Hash) (holder name.Repository, ok bool) {
	r.blobs.mu.Lock()
	defer r.blobs.mu.Unlock()
	for _, h := range r.blobs.holders[d] {
		if h.String() != repo.String() && h.RegistryStr() == repo.RegistryStr() {
			return h, true
		}
	}
	return name.Repository{}, false
}
