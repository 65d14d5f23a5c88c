package transport

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	regtransport "github.com/google/go-containerregistry/pkg/v1/remote/transport"
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
	// uploads are the puts that upload a blob, keyed by registry (not
	// repository): a blob crosses the wire once per registry.
	uploads map[blobKey]*blobCheck
}

type blobKey struct {
	repo   string
	digest v1.Hash
}

// blobCheck is one question to the registry, or one put; done closes when
// it is settled.
type blobCheck struct {
	done    chan struct{}
	settled bool
	there   bool
}

// HasBlob reports whether repo has the blob d. The registry is asked once
// per (repository, digest) for the life of r, which is one run: a blob does
// not come or go during a run except by this run's own puts (PutBlob).
// Callers asking at once share the one question; a failed question is
// asked again by the next caller.
func (r *Registry) HasBlob(ctx context.Context, repo name.Repository, d v1.Hash) (bool, error) {
	c, asked, err := r.claim(ctx, repo, d)
	if c == nil || err != nil {
		return err == nil, err
	}
	there := false
	if !asked {
		there, err = r.askBlob(ctx, repo.Digest(d.String()))
	}
	r.settle(repo, d, c, there, err)
	return there, err
}

func (r *Registry) askBlob(ctx context.Context, ref name.Digest) (bool, error) {
	l, err := r.reader.Layer(ctx, ref)
	ok := false
	if err == nil {
		ok, err = partial.Exists(l)
	}
	if err != nil {
		return false, fmt.Errorf("checking blob %s: %w", ref, err)
	}
	return ok, nil
}

// claim makes this caller the one that asks about, or puts, the blob d in
// repo, and returns its check to settle; nil when repo has the blob. asked
// is true when the registry already said repo lacks it.
func (r *Registry) claim(ctx context.Context, repo name.Repository, d v1.Hash) (mine *blobCheck, asked bool, err error) {
	key := blobKey{repo.String(), d}
	for {
		r.blobs.mu.Lock()
		c, ok := r.blobs.known[key]
		if !ok || (c.settled && !c.there) {
			mine = &blobCheck{done: make(chan struct{})}
			r.blobs.known[key] = mine
			r.blobs.mu.Unlock()
			return mine, ok, nil
		}
		r.blobs.mu.Unlock()
		if err := wait(ctx, c); err != nil {
			return nil, false, err
		}
		if c.there {
			return nil, false, nil
		}
	}
}

// settle records the answer c about the blob d in repo: there, absent, or
// an error, after which the next caller asks or tries again.
func (r *Registry) settle(repo name.Repository, d v1.Hash, c *blobCheck, there bool, err error) {
	key := blobKey{repo.String(), d}
	r.blobs.mu.Lock()
	c.settled, c.there = true, there && err == nil
	if err != nil && r.blobs.known[key] == c {
		delete(r.blobs.known, key)
	} else if c.there {
		r.blobs.holders[d] = append(r.blobs.holders[d], repo)
	}
	if at := (blobKey{repo.RegistryStr(), d}); r.blobs.uploads[at] == c {
		delete(r.blobs.uploads, at)
	}
	r.blobs.mu.Unlock()
	close(c.done)
}

// mountable is the first of repos that a blob can be mounted into repo
// from; nil when none can.
func mountable(repo name.Repository, repos []name.Repository) *name.Repository {
	if i := slices.IndexFunc(repos, func(o name.Repository) bool { return elsewhere(repo, o) }); i >= 0 {
		return &repos[i]
	}
	return nil
}

// elsewhere reports whether other is another repository of repo's
// registry, one a blob can be mounted from.
func elsewhere(repo, other name.Repository) bool {
	return other.String() != repo.String() && other.RegistryStr() == repo.RegistryStr()
}

func wait(ctx context.Context, c *blobCheck) error {
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// PutBlob puts the blob l into repo. It is the one place that decides how a
// blob reaches a registry, so that it crosses the wire once per registry a
// run: known to be in repo, it is not sent; known to be in another
// repository of the registry, it is mounted from there without asking
// first; being uploaded by this run, it is mounted once that upload ends;
// otherwise repo is asked once and, lacking it, gets it uploaded, offered in
// the same request for mounting from the first of fallback on the registry.
// A registry that starts an upload instead of a mount gets the bytes; a
// failed put is tried again by the next caller. sent is told of the bytes
// uploaded as they go (negative when a retry starts again).
func (r *Registry) PutBlob(ctx context.Context, repo name.Repository, l v1.Layer, fallback []name.Repository, sent func(int64)) (err error) {
	d, err := l.Digest()
	if err != nil {
		return err
	}
	c, asked, err := r.claim(ctx, repo, d)
	if c == nil || err != nil {
		return err
	}
	defer func() { r.settle(repo, d, c, true, err) }()
	if _, ok := r.pushers.Load(repo.String()); !ok {
		// repo's first token asks for pull on the fallback repositories
		// too: a run mounting between them authenticates once per
		// repository.
		scopes := []string{repo.Scope(regtransport.PushScope)}
		for _, f := range fallback {
			if elsewhere(repo, f) {
				scopes = append(scopes, f.Scope(regtransport.PullScope))
			}
		}
		r.pushers.LoadOrStore(repo.String(), &pusher{scopes: scopes})
	}
	for at := (blobKey{repo.RegistryStr(), d}); ; {
		r.blobs.mu.Lock()
		from := mountable(repo, r.blobs.holders[d])
		upload, uploading := r.blobs.uploads[at]
		if from == nil && !uploading {
			r.blobs.uploads[at] = c // others wait for this caller's question and upload
		}
		r.blobs.mu.Unlock()
		if from != nil {
			return r.write(ctx, repo, l, d, from, sent)
		} else if !uploading {
			break
		} else if err := wait(ctx, upload); err != nil {
			return err
		}
	}
	if !asked {
		if there, err := r.askBlob(ctx, repo.Digest(d.String())); err != nil || there {
			return err
		}
	}
	return r.write(ctx, repo, l, d, mountable(repo, fallback), sent)
}

// write mounts the blob d into repo from the repository from or, when from
// is nil or the registry starts an upload instead, uploads l: a POST, then
// one PUT with the whole blob, which the transport can retry (GetBody).
func (r *Registry) write(ctx context.Context, repo name.Repository, l v1.Layer, d v1.Hash, from *name.Repository, sent func(int64)) error {
	client, err := r.pusher(ctx, repo, from)
	if err != nil && from != nil {
		// No token that may read from: upload instead of mounting.
		return r.write(ctx, repo, l, d, nil, sent)
	} else if err != nil {
		return err
	}
	u := url.URL{Scheme: repo.Scheme(), Host: repo.RegistryStr(), Path: "/v2/" + repo.RepositoryStr() + "/blobs/uploads/"}
	if from != nil {
		u.RawQuery = url.Values{"mount": {d.String()}, "from": {from.RepositoryStr()}}.Encode()
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	resp, err := send(client, req, http.StatusCreated, http.StatusAccepted)
	if err != nil && from != nil {
		// Some registries fail a mount they cannot do instead of starting
		// an upload (go-containerregistry issues 1404 and 1679).
		return r.write(ctx, repo, l, d, nil, sent)
	} else if err != nil || resp.StatusCode == http.StatusCreated {
		return err
	}
	loc, err := resp.Location()
	if err != nil {
		return err
	}
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	req, _ = http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), nil)
	var read atomic.Int64
	req.GetBody = func() (io.ReadCloser, error) {
		sent(-read.Swap(0)) // a retry's bytes replace the last try's
		rc, err := l.Compressed()
		return &counter{rc, &read, sent}, err
	}
	if req.Body, err = req.GetBody(); err != nil {
		return err
	}
	req.ContentLength, _ = l.Size()
	req.Header.Set("Content-Type", "application/octet-stream")
	_, err = send(client, req, http.StatusCreated)
	return err
}

// send makes the request req and checks that its status is one of want.
func send(client *http.Client, req *http.Request, want ...int) (*http.Response, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return resp, regtransport.CheckError(resp, want...)
}

// pusher is the client of one repository this run writes blobs to. Its
// token (on a token registry) grants push and pull on the repository and
// pull on each repository it mounts from, so it is made again only for a
// new source.
type pusher struct {
	mu     sync.Mutex
	scopes []string
	client *http.Client
}

func (r *Registry) pusher(ctx context.Context, repo name.Repository, from *name.Repository) (*http.Client, error) {
	v, _ := r.pushers.Load(repo.String())
	p := v.(*pusher)
	p.mu.Lock()
	defer p.mu.Unlock()
	// need is what this write needs: push on repo, and pull on from.
	need := []string{repo.Scope(regtransport.PushScope)}
	if from != nil {
		need = append(need, from.Scope(regtransport.PullScope))
	}
	scopes := p.scopes
	if last := need[len(need)-1]; !slices.Contains(scopes, last) {
		scopes = append(slices.Clip(scopes), last)
	}
	if p.client != nil && len(scopes) == len(p.scopes) {
		return p.client, nil
	}
	auth, err := authn.Resolve(ctx, r.keychain, repo)
	if err != nil {
		return nil, err
	}
	rt, err := regtransport.NewWithContext(ctx, repo.Registry, auth, r.transport, scopes)
	if err != nil && len(scopes) > len(need) {
		// A token server may refuse the whole request for one scope it
		// will not grant (a fallback repository that does not exist yet):
		// from now on this repository's token asks for what its writes
		// need, a source at a time.
		scopes = need
		rt, err = regtransport.NewWithContext(ctx, repo.Registry, auth, r.transport, scopes)
	}
	if err != nil {
		return nil, fmt.Errorf("authenticating to %s: %w", repo, err)
	}
	p.client, p.scopes = &http.Client{Transport: rt}, scopes
	return p.client, nil
}

// counter tells sent of the bytes read through it.
type counter struct {
	io.ReadCloser
	read *atomic.Int64
	sent func(int64)
}

func (c *counter) Read(b []byte) (int, error) {
	n, err := c.ReadCloser.Read(b)
	c.read.Add(int64(n))
	c.sent(int64(n))
	return n, err
}
