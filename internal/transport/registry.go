package transport

import (
	"context"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/authn/github"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry is how the release tool reaches container registries: one
// keychain (the docker config, then GITHUB_TOKEN for ghcr.io) and one
// transport, whose retry policy is the only one. It is built once per run
// and handed to publishing, signing, the change report and prune.
type Registry struct {
	keychain  authn.Keychain
	transport http.RoundTripper
}

// NewRegistry returns the registry client that sends its requests through
// rt (New() when nil).
func NewRegistry(rt http.RoundTripper) *Registry {
	if rt == nil {
		rt = New()
	}
	return &Registry{keychain: authn.NewMultiKeychain(authn.DefaultKeychain, github.Keychain), transport: rt}
}

// Options are the go-containerregistry options of a registry call made
// under ctx. go-containerregistry's own retries are off: under the
// transport's they tried a failing request about fifteen times.
func (r *Registry) Options(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(r.keychain),
		remote.WithTransport(r.transport),
		remote.WithRetryPredicate(func(error) bool { return false }),
	}
}
