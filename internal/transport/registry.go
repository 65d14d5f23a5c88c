package transport

import (
	"context"
	"net/http"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/authn/github"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry is how the release tool reaches container registries: one
// keychain (the docker config, then GITHUB_TOKEN for ghcr.io) and one
// transport, whose retry policy is the only one. It is built once per run
// and handed to publishing, signing, the change report and prune, and it
// remembers for that run which repositories hold which blobs (HasBlob), and
// puts blobs into them (PutBlob).
type Registry struct {
	keychain  authn.Keychain
	transport http.RoundTripper
	// reader makes every read of the run: each repository's token is
	// fetched once, not before every read.
	reader *remote.Puller
	// writer puts every manifest of the run (PutManifest), authenticating
	// once per repository.
	writer *remote.Pusher
	blobs  blobs
	// pushers are the clients of the repositories this run writes to.
	pushers sync.Map
}

// NewRegistry returns the registry client of one run.
func NewRegistry() *Registry {
	r := &Registry{keychain: authn.NewMultiKeychain(authn.DefaultKeychain, github.Keychain), transport: New()}
	r.blobs = blobs{known: map[blobKey]*blobCheck{}, holders: map[v1.Hash][]name.Repository{}, uploads: map[blobKey]*blobCheck{}}
	// Each call gives its own context; the puller and pusher only keep
	// each repository's token, and making them does no I/O: no error.
	r.reader, _ = remote.NewPuller(r.options()...)
	r.writer, _ = remote.NewPusher(r.options()...)
	return r
}

// PutManifest puts the manifest t at ref; the blobs it names must be there.
func (r *Registry) PutManifest(ctx context.Context, ref name.Reference, t remote.Taggable) error {
	return r.writer.Put(ctx, ref, t)
}

// Options are the go-containerregistry options of a registry call made
// under ctx. go-containerregistry's own retries are off: under the
// transport's they tried a failing request about fifteen times.
func (r *Registry) Options(ctx context.Context) []remote.Option {
	return append(r.options(), remote.WithContext(ctx), remote.Reuse(r.reader))
}

func (r *Registry) options() []remote.Option {
	return []remote.Option{
		remote.WithAuthFromKeychain(r.keychain),
		remote.WithTransport(r.transport),
		remote.WithRetryPredicate(func(error) bool { return false }),
	}
}
