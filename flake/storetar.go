package flake

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"
)

// owner is what every entry of a store layer is stamped with, whatever the
// store says: the image's uid, gid, names and mtime.
type owner struct {
	UID, GID     int
	Uname, Gname string
	Mtime        int64
}

// writeStoreTar writes the layer of paths exactly as nixpkgs'
// stream_layered_image.py does, byte for byte, so that its diff ID is the
// one `nix build` gives: Python's tarfile in PAX format with /nix and
// /nix/store first, then each path and everything below it in pathlib's
// order, names absolute, hard links as regular files, ownership and mtime
// forced. Go's archive/tar lays headers out differently (a ustar prefix for
// long names, other PAX header names), so the headers are written here.
func writeStoreTar(ctx context.Context, w io.Writer, paths []string, own owner) error {
	t := &pyTar{w: bufio.NewWriterSize(w, 1<<16), own: own}
	t.header("/nix/", "", '5', 0o755, 0)
	t.header("/nix/store/", "", '5', 0o755, 0)
	for _, p := range paths {
		entries, err := storeEntries(p)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := t.add(e); err != nil {
				return err
			}
		}
	}
	if t.err != nil {
		return t.err
	}
	// Two zero blocks end the archive; tarfile then pads it to a whole
	// record of 20 blocks.
	end := 2 * 512
	if rem := (t.n + int64(end)) % (20 * 512); rem != 0 {
		end += 20*512 - int(rem)
	}
	t.write(make([]byte, end))
	if t.err != nil {
		return t.err
	}
	return t.w.Flush()
}

// storeEntries is the store path and, unless it is a symlink, everything
// below it, without following symlinked directories, sorted as pathlib
// sorts paths: component by component.
func storeEntries(p string) ([]string, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return []string{p}, nil
	}
	var out []string
	err = filepath.WalkDir(p, func(path string, _ fs.DirEntry, err error) error {
		out = append(out, path)
		return err
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return pathLess(out[i], out[j]) })
	return out, nil
}

// pathLess compares paths component by component, which is comparing them
// as strings with the separator below every other byte.
func pathLess(a, b string) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if x == '/' {
			return true
		}
		if y == '/' {
			return false
		}
		return x < y
	}
	return len(a) < len(b)
}

// pyTar writes tar headers as Python's tarfile does in PAX format.
type pyTar struct {
	w   *bufio.Writer
	own owner
	n   int64
	err error
}

func (t *pyTar) write(b []byte) {
	if t.err != nil {
		return
	}
	n, err := t.w.Write(b)
	t.n += int64(n)
	t.err = err
}

func (t *pyTar) add(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: no file mode", path)
	}
	mode := int64(st.Mode & 0o7777)
	name := "/" + strings.TrimLeft(path, "/")
	switch {
	case fi.Mode().IsRegular():
		t.header(name, "", '0', mode, fi.Size())
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if t.err != nil {
			return t.err
		}
		n, err := io.Copy(t.w, io.LimitReader(f, fi.Size()))
		t.n += n
		if err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		if n != fi.Size() {
			return fmt.Errorf("reading %s: %d bytes, want %d", path, n, fi.Size())
		}
		if rem := n % 512; rem != 0 {
			t.write(make([]byte, 512-rem))
		}
	case fi.IsDir():
		t.header(name+"/", "", '5', mode, 0)
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(path)
		if err != nil {
			return err
		}
		t.header(name, target, '2', mode, 0)
	default:
		return fmt.Errorf("%s: a %s has no place in a store layer", path, fi.Mode().Type())
	}
	return t.err
}

// header writes one entry's header, preceded by a PAX extended header when
// a field does not fit ustar, with the records in tarfile's order.
func (t *pyTar) header(name, link string, typ byte, mode, size int64) {
	var pax [][2]string
	for _, f := range []struct {
		key, value string
		max        int
	}{{"path", name, 100}, {"linkpath", link, 100}, {"uname", t.own.Uname, 32}, {"gname", t.own.Gname, 32}} {
		if !isASCII(f.value) || len(f.value) > f.max {
			pax = append(pax, [2]string{f.key, f.value})
		}
	}
	uid, gid, mtime := int64(t.own.UID), int64(t.own.GID), t.own.Mtime
	for _, f := range []struct {
		key    string
		v      *int64
		digits int
	}{{"uid", &uid, 8}, {"gid", &gid, 8}, {"size", &size, 12}, {"mtime", &mtime, 12}} {
		if *f.v < 0 || *f.v >= 1<<(3*(f.digits-1)) {
			pax = append(pax, [2]string{f.key, strconv.FormatInt(*f.v, 10)})
			*f.v = 0
		}
	}
	if len(pax) > 0 {
		records := paxRecords(pax)
		t.write(ustarHeader("././@PaxHeader", "", 'x', 0, 0, 0, int64(len(records)), 0, "", ""))
		t.write(records)
		if rem := len(records) % 512; rem != 0 {
			t.write(make([]byte, 512-rem))
		}
	}
	t.write(ustarHeader(name, link, typ, mode, uid, gid, size, mtime, t.own.Uname, t.own.Gname))
}

// paxRecords are "<length> <key>=<value>\n" records, the length counting
// itself; a value that is not UTF-8 marks the whole header binary.
func paxRecords(pax [][2]string) []byte {
	var b []byte
	for _, kv := range pax {
		if !utf8.ValidString(kv[1]) {
			b = append(b, "21 hdrcharset=BINARY\n"...)
			break
		}
	}
	for _, kv := range pax {
		l := len(kv[0]) + len(kv[1]) + 3
		n, p := 0, 0
		for {
			n = l + len(strconv.Itoa(p))
			if n == p {
				break
			}
			p = n
		}
		b = append(b, strconv.Itoa(p)+" "+kv[0]+"="+kv[1]+"\n"...)
	}
	return b
}

// ustarHeader lays out a 512-byte header as tarfile's _create_header:
// strings as ASCII with "?" for anything else, cut to their field, numbers
// in octal with a NUL, empty device numbers, and the checksum as six
// octal digits, a NUL and a space.
func ustarHeader(name, link string, typ byte, mode, uid, gid, size, mtime int64, uname, gname string) []byte {
	h := make([]byte, 512)
	putString(h[0:100], name)
	putOctal(h[100:108], mode)
	putOctal(h[108:116], uid)
	putOctal(h[116:124], gid)
	putOctal(h[124:136], size)
	putOctal(h[136:148], mtime)
	copy(h[148:156], "        ")
	h[156] = typ
	putString(h[157:257], link)
	copy(h[257:265], "ustar\x0000")
	putString(h[265:297], uname)
	putString(h[297:329], gname)
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:155], fmt.Sprintf("%06o\x00", sum))
	return h
}

func putString(field []byte, s string) {
	i := 0
	for _, r := range s {
		if i == len(field) {
			return
		}
		if r < utf8.RuneSelf {
			field[i] = byte(r)
		} else {
			field[i] = '?'
		}
		i++
	}
}

func putOctal(field []byte, n int64) {
	copy(field, fmt.Sprintf("%0*o\x00", len(field)-1, n))
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
