// Package transport owns the one HTTP transport every network call of the
// release tool goes through: registries, Sigstore and the GitHub API all
// retry the same way, with the same limits. Its Registry is the one client
// of registries, and the one way a blob is put into one (PutBlob).
package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// The shortest and longest wait between tries; tests shorten them.
var waitMin, waitMax = 250 * time.Millisecond, 10 * time.Second

// New returns a RoundTripper that retries connection errors, 429s and 5xx
// responses with exponential backoff, honouring Retry-After.
func New() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// Checks run up to 32 at once per image (a HEAD per blob), and
	// several images at once: Go keeps 2 idle connections per host,
	// so the rest would be opened anew for every request.
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 256, 64
	c := retryablehttp.NewClient()
	c.HTTPClient = &http.Client{Transport: t}
	c.RetryMax = 4
	c.RetryWaitMin = waitMin
	c.RetryWaitMax = waitMax
	c.Logger = log.New(io.Discard, "", 0)
	// A registry answers 4xx for "not found" probes (HEAD before upload):
	// those are answers, not failures, and must reach the caller unchanged.
	c.ErrorHandler = retryablehttp.PassthroughErrorHandler
	c.CheckRetry = checkRetry
	return &streamAware{client: c, direct: t}
}

// streamAware retries without ever holding a request body in memory.
// retryablehttp's own RoundTripper reads every body into a buffer so it can
// send it again, which for a layer upload means the whole layer. A body that
// can be reopened (GetBody, as go-containerregistry sets for layers) is
// reopened for each try instead; one that cannot is sent once, straight
// through, and go-containerregistry retries that upload itself.
type streamAware struct {
	client *retryablehttp.Client
	direct http.RoundTripper
}

func (s *streamAware) RoundTrip(req *http.Request) (*http.Response, error) {
	hasBody := req.Body != nil && req.Body != http.NoBody
	if hasBody && req.GetBody == nil {
		return s.direct.RoundTrip(req)
	}
	var body any
	if hasBody {
		// The body the caller opened is replaced by fresh ones from GetBody.
		req.Body.Close()
		body = retryablehttp.ReaderFunc(func() (io.Reader, error) { return req.GetBody() })
	}
	rreq, err := retryablehttp.NewRequestWithContext(req.Context(), req.Method, req.URL.String(), body)
	if err != nil {
		return nil, err
	}
	// Each try sends the caller's request as it is, with a fresh body.
	rreq.Request = req.Clone(req.Context())
	return s.client.Do(rreq)
}

// checkRetry is retryablehttp's default policy, except that a TLS handshake
// with a plain-HTTP server is not retried: that answer will not change, and
// go-containerregistry probes https before falling back to http for
// --insecure registries.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) || (err != nil && strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")) {
		return false, err
	}
	return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
}
