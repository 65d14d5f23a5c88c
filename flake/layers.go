package flake

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// LayerStore compresses each layer once. Nix writes image layers
// uncompressed; a registry and an OCI layout want them gzipped, and the
// digest that names a layer is the digest of its gzipped bytes. The store
// gzips a layer the first time any image needs it, into a file named by its
// uncompressed digest, and serves the digest, size and compressed bytes of
// every later use from that file: the base toolset thirty agents share is
// compressed once, and pushing or writing a layout compresses nothing. A
// layer is streamed from the archive through gzip into the file and from
// the file to its destination, never held in memory.
//
// A store's files live as long as the images that use them; a new run
// starts with an empty directory (Build does this), so a file is never
// trusted beyond the process that wrote it.
type LayerStore struct {
	dir string
	// compressor makes the gzip stream: go-containerregistry's level, so a
	// layer gets the digest it always had. A test seam.
	compressor func(io.Writer) io.WriteCloser

	mu     sync.Mutex
	layers map[v1.Hash]*compressedLayer
}

// NewLayerStore keeps compressed layers in dir, which it creates.
func NewLayerStore(dir string) *LayerStore {
	return &LayerStore{
		dir: dir,
		compressor: func(w io.Writer) io.WriteCloser {
			zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
			return zw
		},
		layers: map[v1.Hash]*compressedLayer{},
	}
}

// compressedLayer is one layer's gzipped bytes in a file of the store.
type compressedLayer struct {
	once   sync.Once
	path   string
	digest v1.Hash
	size   int64
	err    error
}

// compress returns the compressed form of the layer whose uncompressed
// digest is diffID, reading it from open the first time. Concurrent calls
// for one layer wait for a single compression.
func (s *LayerStore) compress(ctx context.Context, diffID v1.Hash, open func() (io.ReadCloser, error)) (*compressedLayer, error) {
	s.mu.Lock()
	c, ok := s.layers[diffID]
	if !ok {
		c = &compressedLayer{path: filepath.Join(s.dir, diffID.Algorithm+"-"+diffID.Hex+".gz")}
		s.layers[diffID] = c
	}
	s.mu.Unlock()
	c.once.Do(func() { c.err = s.write(ctx, c, diffID, open) })
	if c.err != nil {
		return nil, c.err
	}
	return c, nil
}

// write gzips the layer into c.path (through a temporary file, so a file
// there is always complete), hashing both sides on the way: the compressed
// digest names the layer, and the uncompressed one must be the diffID the
// image config claims, or the file would stand for another layer.
func (s *LayerStore) write(ctx context.Context, c *compressedLayer, diffID v1.Hash, open func() (io.ReadCloser, error)) error {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	in, err := open()
	if err != nil {
		return fmt.Errorf("reading layer %s: %w", diffID, err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(s.dir, ".compressing-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()

	compressed := sha256.New()
	counted := &countingWriter{w: io.MultiWriter(tmp, compressed)}
	// gzip writes a few hundred bytes at a time; a buffer makes that one
	// write call per 64 KiB.
	buffered := bufio.NewWriterSize(counted, 1<<16)
	zw := s.compressor(buffered)
	uncompressed := sha256.New()
	if _, err := io.Copy(zw, io.TeeReader(ctxReader{ctx, in}, uncompressed)); err != nil {
		return fmt.Errorf("compressing layer %s: %w", diffID, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compressing layer %s: %w", diffID, err)
	}
	if err := buffered.Flush(); err != nil {
		return fmt.Errorf("writing layer %s: %w", diffID, err)
	}
	if got := hexDigest(uncompressed); got != diffID.Hex {
		return fmt.Errorf("layer listed as %s has content sha256:%s: the archive is damaged", diffID, got)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), c.path); err != nil {
		return err
	}
	c.digest = v1.Hash{Algorithm: "sha256", Hex: hexDigest(compressed)}
	c.size = counted.n
	return nil
}

// ctxReader stops reading once ctx is done, so a release that is cancelled
// does not finish compressing a large layer first.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

func hexDigest(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// storedLayer is a layer of one image: compressed bytes from the store,
// uncompressed bytes from the image's own archive (reading them costs no
// decompression).
type storedLayer struct {
	*compressedLayer
	diffID       v1.Hash
	uncompressed func() (io.ReadCloser, error)
}

var _ v1.Layer = storedLayer{}

func (l storedLayer) Digest() (v1.Hash, error)             { return l.digest, nil }
func (l storedLayer) DiffID() (v1.Hash, error)             { return l.diffID, nil }
func (l storedLayer) Size() (int64, error)                 { return l.size, nil }
func (l storedLayer) MediaType() (types.MediaType, error)  { return types.OCILayer, nil }
func (l storedLayer) Compressed() (io.ReadCloser, error)   { return os.Open(l.path) }
func (l storedLayer) Uncompressed() (io.ReadCloser, error) { return l.uncompressed() }
