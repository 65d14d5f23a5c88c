package sign

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"
)

// A store path's NAR hash (the narHash of `nix path-info`) is the SHA-256 of
// its NAR serialisation: a directory lists its entries sorted by name, a
// regular file carries its contents and whether it is executable, a symlink
// its target. Everything NAR records is in a tar layer, so the hash of a
// store path can be computed from the image alone and compared with what Nix
// and binary caches say.

// errNAROrder says that an entry came before one that precedes it in NAR
// order; the caller then sorts the store path's entries itself.
var errNAROrder = errors.New("entries are not in NAR order")

// errNotDirectory says that a store path which is a file or symlink has
// entries below it.
var errNotDirectory = errors.New("entries below a store path that is not a directory")

// narKind is what a NAR node is.
type narKind int

const (
	narRegular narKind = iota
	narDirectory
	narSymlink
)

// narNode is one file, directory or symlink of a store path, at rel (path
// components below the store path; none for the store path itself).
type narNode struct {
	rel        []string
	kind       narKind
	executable bool
	target     string // symlink
	size       int64  // regular file
}

// narHasher writes the NAR of one store path into a hash as its nodes
// arrive. They must arrive in NAR order: a directory before what it holds,
// siblings sorted by name. Directories a tar leaves out are implied by what
// they hold, which is all NAR says of a directory.
type narHasher struct {
	h       hash.Hash
	started bool
	rootDir bool     // the store path is a directory
	open    []string // directories below the root that are open, outermost first
	last    []string // the last node written
	done    bool     // the root is not a directory and was written
	buf     []byte   // for copying file contents into h
}

func newNARHasher() *narHasher {
	n := &narHasher{h: sha256.New()}
	n.str("nix-archive-1")
	return n
}

// add writes node; content holds a regular file's size bytes.
func (n *narHasher) add(node narNode, content io.Reader) error {
	if n.done {
		return fmt.Errorf("%s: %w", strings.Join(node.rel, "/"), errNotDirectory)
	}
	if n.started && compareRel(n.last, node.rel) >= 0 {
		return errNAROrder
	}
	if !n.started {
		n.started = true
		if len(node.rel) > 0 {
			n.rootDir = true
			n.str("(", "type", "directory")
		}
	}
	// Close the directories that do not hold node.
	parent := node.rel[:max(len(node.rel)-1, 0)]
	keep := 0
	for keep < len(n.open) && keep < len(parent) && n.open[keep] == parent[keep] {
		keep++
	}
	for len(n.open) > keep {
		n.open = n.open[:len(n.open)-1]
		n.str(")", ")") // the directory, then its entry
	}
	// Open the directories the tar left out.
	for _, name := range parent[len(n.open):] {
		n.str("entry", "(", "name", name, "node", "(", "type", "directory")
		n.open = append(n.open, name)
	}
	n.last = node.rel
	if len(node.rel) > 0 {
		n.str("entry", "(", "name", node.rel[len(node.rel)-1], "node")
	} else if node.kind == narDirectory {
		n.rootDir = true
		n.str("(", "type", "directory")
		return nil
	}
	switch node.kind {
	case narDirectory:
		n.str("(", "type", "directory")
		n.open = append(n.open, node.rel[len(node.rel)-1])
		return nil
	case narSymlink:
		n.str("(", "type", "symlink", "target", node.target, ")")
	case narRegular:
		n.str("(", "type", "regular")
		if node.executable {
			n.str("executable", "")
		}
		n.str("contents")
		n.int(uint64(node.size))
		if n.buf == nil {
			n.buf = make([]byte, 64<<10)
		}
		copied, err := io.CopyBuffer(n.h, io.LimitReader(content, node.size), n.buf)
		if err == nil && copied < node.size {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", strings.Join(node.rel, "/"), err)
		}
		n.pad(node.size)
		n.str(")")
	}
	if len(node.rel) > 0 {
		n.str(")") // the entry
	} else {
		n.done = true
	}
	return nil
}

// sum closes what is open and returns the hash.
func (n *narHasher) sum() []byte {
	for range n.open {
		n.str(")", ")")
	}
	n.open = nil
	if n.rootDir {
		n.str(")")
	}
	return n.h.Sum(nil)
}

// str writes NAR strings: a little-endian length, the bytes, zero padding
// to a multiple of 8.
func (n *narHasher) str(ss ...string) {
	for _, s := range ss {
		n.int(uint64(len(s)))
		io.WriteString(n.h, s)
		n.pad(int64(len(s)))
	}
}

func (n *narHasher) int(v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	n.h.Write(b[:])
}

func (n *narHasher) pad(size int64) {
	var zero [8]byte
	if r := size % 8; r != 0 {
		n.h.Write(zero[:8-r])
	}
}

// compareRel orders paths the way NAR lists them: component by component,
// a directory before what it holds.
func compareRel(a, b []string) int {
	return slices.Compare(a, b)
}
