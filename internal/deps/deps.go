// Package deps pins the chosen dependencies until the code that uses them lands.
package deps

import (
	_ "github.com/google/go-containerregistry/pkg/registry"
	_ "github.com/google/go-containerregistry/pkg/v1/remote"
	_ "github.com/google/go-containerregistry/pkg/v1/layout"
	_ "github.com/google/go-containerregistry/pkg/v1/tarball"
	_ "github.com/google/go-containerregistry/pkg/authn/github"
	_ "github.com/google/go-github/v62/github"
	_ "github.com/hashicorp/go-retryablehttp"
	_ "github.com/sigstore/cosign/v2/pkg/cosign"
	_ "github.com/sigstore/cosign/v2/pkg/oci/mutate"
	_ "github.com/sigstore/cosign/v2/pkg/oci/remote"
	_ "github.com/sigstore/cosign/v2/pkg/oci/static"
	_ "github.com/sigstore/cosign/v2/pkg/providers/github"
	_ "github.com/sigstore/cosign/v2/cmd/cosign/cli/fulcio"
	_ "github.com/sigstore/cosign/v2/pkg/cosign/attestation"
	_ "github.com/spf13/cobra"
	_ "golang.org/x/sync/errgroup"
)
