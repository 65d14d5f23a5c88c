package sign

import (
	"archive/tar"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/nothingnesses/agent-images/flake"
)

// storePath is one top-level /nix/store entry found inside an image.
type storePath struct {
	Path                string // /nix/store/<hash>-<name>-<version>[-<output>]
	Hash, Name, Version string // split as flake.ParseStorePath does
	// NarHash is the hex SHA-256 of the path's NAR serialisation, as Nix
	// registered it (narHash); "" when the local store does not hold it.
	NarHash string
}

// storePaths lists the top-level /nix/store entries of img's layers, sorted
// by path, each with the narHash Nix registered for it: the image says what
// is shipped, Nix what each path is, without a second read of its files.
//
// The paths are usually in the local store, since this process built the
// image (a reused or merged image is never attested anew). Not always: the
// image does not refer to its contents, so one Nix already had or fetched
// does not bring them, and a garbage collection may have taken them. Nix
// then fetches such a path from a substituter; one it cannot get is listed
// without a hash.
func storePaths(ctx context.Context, img v1.Image, run flake.Runner) ([]storePath, error) {
	fs := mutate.Extract(img) // the image's filesystem, its layers applied
	defer fs.Close()
	found := map[string]storePath{} // by path
	tr := tar.NewReader(fs)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			return nil, fmt.Errorf("reading the image's layers: %w", err)
		}
		rest, ok := strings.CutPrefix(strings.TrimPrefix(path.Clean("/"+h.Name), "/"), "nix/store/")
		base, _, _ := strings.Cut(rest, "/")
		if n, valid := flake.ParseStorePath(base); ok && valid {
			found["/nix/store/"+base] = storePath{Path: "/nix/store/" + base, Hash: n.Hash, Name: n.Name, Version: n.Version}
		}
	}
	paths := slices.Sorted(maps.Keys(found))
	hashes, err := flake.NarHashes(ctx, run, paths)
	if err != nil {
		return nil, err
	}
	out := make([]storePath, len(paths))
	for i, p := range paths {
		out[i] = found[p]
		if sri, ok := hashes[p]; ok {
			sum, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sri, "sha256-"))
			if !strings.HasPrefix(sri, "sha256-") || err != nil || len(sum) != 32 {
				return nil, fmt.Errorf("nix says the narHash of %s is %q, want sha256-<base64>", p, sri)
			}
			out[i].NarHash = hex.EncodeToString(sum)
		}
	}
	return out, nil
}
