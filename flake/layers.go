package flake

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression is how layers are compressed for a registry.
type Compression string

// The compressions a layer can have; gzip is what every runtime pulls.
const (
	Gzip Compression = "gzip"
	Zstd Compression = "zstd"
)

// ParseCompression checks a compression named by a user.
func ParseCompression(s string) (Compression, error) {
	switch c := Compression(s); c {
	case Gzip, Zstd:
		return c, nil
	}
	return "", fmt.Errorf("compression %q is not supported: use gzip or zstd", s)
}

func (c Compression) mediaType() types.MediaType {
	if c == Zstd {
		return types.OCILayerZStd
	}
	return types.OCILayer
}

// compressor makes the compressed stream, the same bytes on every machine
// for one release binary. cacheFormat names these settings in every cache
// key: change it whenever they, or the tar writer, change what is written.
func (c Compression) compressor(w io.Writer) (io.WriteCloser, error) {
	if c == Zstd {
		return zstd.NewWriter(w, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
	}
	return gzip.NewWriterLevel(w, gzip.BestSpeed)
}

// cacheFormat names how layers are written and what an entry holds; a
// change to the tar writer, the compressors' settings or cacheEntry must
// change it, so no entry of another format is ever read.
const cacheFormat = "agent-images-layer-2"

// CacheEnv names a layer cache directory for every run that does not
// choose one.
const CacheEnv = "AGENT_IMAGES_LAYER_CACHE"

// DefaultCacheDir is where layers are kept between runs: $AGENT_IMAGES_LAYER_CACHE,
// else $XDG_CACHE_HOME/agent-images/layers, else ~/.cache/agent-images/layers.
func DefaultCacheDir() (string, error) {
	if dir := os.Getenv(CacheEnv); dir != "" {
		return dir, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding a cache directory (set XDG_CACHE_HOME or HOME): %w", err)
	}
	return filepath.Join(dir, "agent-images", "layers"), nil
}

// layerCache packs and compresses each layer at most once, ever. A layer
// is named by everything its bytes depend on: for a store layer its store
// paths (immutable), their ownership and mtime; for any other its diff ID;
// and the compression and cacheFormat. Its entry (diff ID, compressed
// digest and size) is kept beside the compressed file, so an image's
// digest is known without reading a layer, and a layer the registry has
// is never opened. Files are written to a temporary name and renamed, so
// two releases on one machine at once each see whole files; within a run
// concurrent images wait for one packing of a layer they share.
type layerCache struct {
	dir         string
	compression Compression
	slots       chan struct{} // bounds how many layers are packed at once

	mu     sync.Mutex
	layers map[string]*cachedLayer
	packed atomic.Int64 // layers packed by this process, for tests
}

func newLayerCache(dir string, c Compression, jobs int) (*layerCache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("layer cache: %w", err)
	}
	return &layerCache{dir: dir, compression: c, slots: make(chan struct{}, jobs), layers: map[string]*cachedLayer{}}, nil
}

// cacheEntry is what is known of a packed layer without reading it.
type cacheEntry struct {
	DiffID v1.Hash `json:"diffID"`
	Digest v1.Hash `json:"digest"`
	Size   int64   `json:"size"`
	// UncompressedSize lets a docker-archive be written without packing
	// the layer twice (once to count it).
	UncompressedSize int64 `json:"uncompressedSize"`
}

// whole reports whether every field of the entry is set: an entry cut short
// or written by other code is packed again, never served.
func (e cacheEntry) whole() bool {
	return e.DiffID.Hex != "" && e.Digest.Hex != "" && e.Size > 0 && e.UncompressedSize > 0
}

// storeLayer is the layer of paths, owned by own, as the stream script
// writes it.
func (c *layerCache) storeLayer(ctx context.Context, paths []string, own owner) (*cachedLayer, error) {
	key, _ := json.Marshal(struct {
		Format, Compression string
		Paths               []string
		Owner               owner
	}{cacheFormat, string(c.compression), paths, own})
	return c.layer(ctx, key, nil, func(ctx context.Context, w io.Writer) error { return writeStoreTar(ctx, w, paths, own) })
}

// knownLayer is a layer whose diff ID is known and whose bytes open reads;
// they are checked against the diff ID when packed.
func (c *layerCache) knownLayer(ctx context.Context, diffID v1.Hash, open func() (io.ReadCloser, error)) (*cachedLayer, error) {
	key := []byte(cacheFormat + " " + string(c.compression) + " " + diffID.String())
	return c.layer(ctx, key, &diffID, func(ctx context.Context, w io.Writer) error {
		r, err := open()
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = io.Copy(w, ctxReader{ctx, r})
		return err
	})
}

func (c *layerCache) layer(ctx context.Context, key []byte, diffID *v1.Hash, write func(context.Context, io.Writer) error) (*cachedLayer, error) {
	sum := sha256.Sum256(key)
	name := hex.EncodeToString(sum[:])
	c.mu.Lock()
	l, ok := c.layers[name]
	if !ok {
		l = &cachedLayer{cache: c, path: filepath.Join(c.dir, name), diffID: diffID, write: write}
		c.layers[name] = l
	}
	c.mu.Unlock()
	if err := l.ensure(ctx, false); err != nil {
		return nil, err
	}
	return l, nil
}

// cachedLayer is one layer of the cache: its entry, its compressed file,
// and how to write its bytes again.
type cachedLayer struct {
	cache  *layerCache
	path   string   // the entry is path+".json", the compressed file path+".blob"
	diffID *v1.Hash // what the bytes must hash to, when known in advance
	write  func(context.Context, io.Writer) error

	mu    sync.Mutex
	entry cacheEntry
	ready bool
}

var _ v1.Layer = (*cachedLayer)(nil)

// ensure reads the layer's entry, or packs the layer when there is none or
// (repack) its compressed file is gone. Concurrent callers wait for one
// packing.
func (l *cachedLayer) ensure(ctx context.Context, repack bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !repack {
		if l.ready {
			return nil
		}
		if data, err := os.ReadFile(l.path + ".json"); err == nil && json.Unmarshal(data, &l.entry) == nil && l.entry.whole() && (l.diffID == nil || *l.diffID == l.entry.DiffID) {
			l.ready = true
			return nil
		}
	} else if _, err := os.Stat(l.path + ".blob"); err == nil {
		return nil
	}
	entry, err := l.pack(ctx)
	switch {
	case err != nil:
		return err
	case repack && entry != l.entry:
		return fmt.Errorf("layer %s packed again as %s, want %s: the cache was written by another release", l.entry.DiffID, entry.Digest, l.entry.Digest)
	case !repack:
		l.entry, l.ready = entry, true
	}
	return nil
}

// pack writes the layer through the compressor into the cache, hashing
// both sides on the way, then its entry: an entry always has a whole file.
func (l *cachedLayer) pack(ctx context.Context) (cacheEntry, error) {
	c := l.cache
	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
	case <-ctx.Done():
		return cacheEntry{}, ctx.Err()
	}
	c.packed.Add(1)
	tmp, err := os.CreateTemp(c.dir, ".packing-")
	if err != nil {
		return cacheEntry{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	compressed, uncompressed := sha256.New(), sha256.New()
	tarBytes := &countingWriter{w: uncompressed}
	counted := &countingWriter{w: io.MultiWriter(tmp, compressed)}
	buffered := bufio.NewWriterSize(counted, 1<<16)
	zw, err := c.compression.compressor(buffered)
	if err != nil {
		return cacheEntry{}, err
	}
	if err := l.write(ctx, io.MultiWriter(zw, tarBytes)); err != nil {
		return cacheEntry{}, fmt.Errorf("packing layer: %w", err)
	}
	if err := errors.Join(zw.Close(), buffered.Flush(), tmp.Close()); err != nil {
		return cacheEntry{}, fmt.Errorf("writing layer: %w", err)
	}
	entry := cacheEntry{DiffID: sha256Hash(uncompressed), Digest: sha256Hash(compressed), Size: counted.n, UncompressedSize: tarBytes.n}
	if l.diffID != nil && entry.DiffID != *l.diffID {
		return cacheEntry{}, fmt.Errorf("layer listed as %s has content %s: its source is damaged", *l.diffID, entry.DiffID)
	}
	if err := os.Rename(tmp.Name(), l.path+".blob"); err != nil {
		return cacheEntry{}, err
	}
	data, _ := json.Marshal(entry)
	return entry, writeAtomic(l.path+".json", data)
}

func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".entry-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func (l *cachedLayer) Digest() (v1.Hash, error)         { return l.entry.Digest, nil }
func (l *cachedLayer) DiffID() (v1.Hash, error)         { return l.entry.DiffID, nil }
func (l *cachedLayer) Size() (int64, error)             { return l.entry.Size, nil }
func (l *cachedLayer) UncompressedSize() (int64, error) { return l.entry.UncompressedSize, nil }
func (l *cachedLayer) MediaType() (types.MediaType, error) {
	return l.cache.compression.mediaType(), nil
}

// Compressed opens the compressed file, packing the layer again if it was
// removed since; the digest must come out the same. v1.Layer gives no
// context: packing again is not cancelled.
func (l *cachedLayer) Compressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path + ".blob")
	if !errors.Is(err, fs.ErrNotExist) {
		return f, err
	}
	if err := l.ensure(context.Background(), true); err != nil {
		return nil, err
	}
	return os.Open(l.path + ".blob")
}

// Uncompressed writes the layer again from its source (the store, or the
// file Nix wrote), which costs no decompression. v1.Layer gives no
// context, so nothing cancels it but closing the reader.
func (l *cachedLayer) Uncompressed() (io.ReadCloser, error) {
	r, w := io.Pipe()
	go func() { w.CloseWithError(l.write(context.Background(), w)) }()
	return r, nil
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

func sha256Hash(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}
