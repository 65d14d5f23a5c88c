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
	regtransport "github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// PutBlob makes sure repo has the blob l: it is the one place that decides
// how a blob reaches a registry, so each blob crosses the wire once per
// registry a run and is asked about at most once per repository.
//
//   - repo is known to have it: nothing is sent;
//   - another repository of the registry is known to have it: it is mounted
//     from there, without asking first;
//   - this run is uploading it to the registry: that upload is waited for,
//     then the blob is mounted from there;
//   - otherwise the registry is asked once, and if repo lacks the blob it is
//     uploaded, offered for mounting in the same request from the first of
//     fallback on the same registry, where an earlier run may have put it.
//
// A registry that starts an upload instead of mounting gets the bytes. A
// failed put is tried again by the next caller. sent is told of progress in
// bytes as the blob goes, and, by a successful return, of its size in all.
func (r *Registry) PutBlob(ctx context.Context, repo name.Repository, l v1.Layer, fallback []name.Repository, sent func(int64)) error {
	d, err := l.Digest()
	if err != nil {
		return err
	}
	size, err := l.Size()
	if err != nil {
		return err
	}
	var n atomic.Int64
	count := func(k int64) {
		if sent != nil {
			sent(k)
		}
		n.Add(k)
	}
	if err := r.putBlob(ctx, repo, l, d, fallback, count); err != nil {
		return fmt.Errorf("putting blob %s into %s: %w", d, repo, err)
	}
	count(size - n.Load())
	return nil
}

func (r *Registry) putBlob(ctx context.Context, repo name.Repository, l v1.Layer, d v1.Hash, fallback []name.Repository, sent func(int64)) (err error) {
	c, asked, err := r.claim(ctx, repo, d)
	if c == nil || err != nil {
		return err
	}
	defer func() { r.settle(repo, d, c, err == nil, err) }()
	at := blobKey{repo.RegistryStr(), d}
	for {
		r.blobs.mu.Lock()
		from, held := r.holder(repo, d)
		upload, uploading := r.blobs.uploads[at]
		if !held && !uploading {
			// This caller uploads it: others wait for it, and for the
			// question before it.
			r.blobs.uploads[at] = c
		}
		r.blobs.mu.Unlock()
		switch {
		case held:
			return r.write(ctx, repo, l, d, &from, sent)
		case uploading:
			if err := wait(ctx, upload); err != nil {
				return err
			}
			continue
		}
		if !asked {
			if there, err := r.askBlob(ctx, repo.Digest(d.String())); err != nil || there {
				return err
			}
		}
		for _, f := range fallback {
			if f.String() != repo.String() && f.RegistryStr() == repo.RegistryStr() {
				return r.write(ctx, repo, l, d, &f, sent)
			}
		}
		return r.write(ctx, repo, l, d, nil, sent)
	}
}

// write mounts the blob d into repo from the repository from, or, when from
// is nil or the registry starts an upload instead, uploads l's bytes: a
// POST, then one PUT with the whole blob.
func (r *Registry) write(ctx context.Context, repo name.Repository, l v1.Layer, d v1.Hash, from *name.Repository, sent func(int64)) error {
	client, err := r.pusher(ctx, repo, from)
	if err != nil {
		return err
	}
	u := url.URL{Scheme: repo.Scheme(), Host: repo.RegistryStr(), Path: "/v2/" + repo.RepositoryStr() + "/blobs/uploads/"}
	if from != nil {
		u.RawQuery = url.Values{"mount": {d.String()}, "from": {from.RepositoryStr()}}.Encode()
	}
	resp, err := send(ctx, client, http.MethodPost, u.String(), nil, http.StatusCreated, http.StatusAccepted)
	if err != nil && from != nil {
		// Some registries fail a mount they cannot do rather than
		// starting an upload (go-containerregistry issues 1404, 1679).
		return r.write(ctx, repo, l, d, nil, sent)
	}
	if err != nil || resp.StatusCode == http.StatusCreated {
		return err
	}
	loc, err := resp.Location()
	if err != nil {
		return err
	}
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	var read atomic.Int64
	// The transport retries through GetBody; a retry's bytes replace the
	// last try's in the progress.
	body := func() (io.ReadCloser, error) {
		sent(-read.Swap(0))
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		return &counter{ReadCloser: rc, read: &read, sent: sent}, nil
	}
	_, err = send(ctx, client, http.MethodPut, loc.String(), body, http.StatusCreated)
	return err
}

// send makes one request and checks its status is one of want.
func send(ctx context.Context, client *http.Client, method, url string, body func() (io.ReadCloser, error), want ...int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.GetBody = body
		if req.Body, err = body(); err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := regtransport.CheckError(resp, want...); err != nil {
		return nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return resp, err
}

// pusher is the authenticated client of one repository this run writes to:
// its token (on a token registry) grants push and pull on the repository
// and pull on each repository blobs were mounted from, so it is made again
// only when a mount needs a new source.
type pusher struct {
	mu     sync.Mutex
	scopes []string
	client *http.Client
}

func (r *Registry) pusher(ctx context.Context, repo name.Repository, from *name.Repository) (*http.Client, error) {
	r.blobs.mu.Lock()
	p, ok := r.blobs.pushers[repo.String()]
	if !ok {
		p = &pusher{scopes: []string{repo.Scope(regtransport.PushScope)}}
		r.blobs.pushers[repo.String()] = p
	}
	r.blobs.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	scopes := p.scopes
	if from != nil && !slices.Contains(scopes, from.Scope(regtransport.PullScope)) {
		scopes = append(slices.Clip(scopes), from.Scope(regtransport.PullScope))
	}
	if p.client != nil && len(scopes) == len(p.scopes) {
		return p.client, nil
	}
	auth, err := authn.Resolve(ctx, r.keychain, repo)
	if err != nil {
		return nil, err
	}
	rt, err := regtransport.NewWithContext(ctx, repo.Registry, auth, r.transport, scopes)
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
