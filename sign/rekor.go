package sign

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/go-openapi/runtime"
	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	rekorclient "github.com/sigstore/rekor/pkg/generated/client"
	"github.com/sigstore/rekor/pkg/util"
)

// newRekorClient is rekor's GetRekorClient over our transport: rekor's own
// constructor hard-wires its HTTP client, and every call here must retry the
// same way as the rest of the release.
func newRekorClient(rekorURL string, rt http.RoundTripper) (*rekorclient.Rekor, error) {
	u, err := url.Parse(rekorURL)
	if err != nil {
		return nil, fmt.Errorf("parsing the Rekor URL %q: %w", rekorURL, err)
	}
	if u.Path == "" {
		u.Path = rekorclient.DefaultBasePath
	}
	t := httptransport.NewWithClient(u.Host, u.Path, []string{u.Scheme}, &http.Client{Transport: rt})
	t.Consumers["application/json"] = runtime.JSONConsumer()
	t.Consumers["application/x-pem-file"] = runtime.TextConsumer()
	t.Producers["application/json"] = runtime.JSONProducer()
	registry := strfmt.Default
	registry.Add("signedCheckpoint", &util.SignedNote{}, util.SignedCheckpointValidator)
	return rekorclient.New(t, registry), nil
}
