// Package redact decides what of a reference someone gave the release tool
// (a flake reference, a registry, a key or service URL) may be shown in a
// log, an error, release.json or a published attestation. Never shown:
// credentials (a URL's user:password@), queries and fragments (where tokens
// travel, as in ?access_token=), and, for flake inputs, local paths (they
// name the machine and can hold anything).
package redact

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// Hidden stands in for a removed local path.
const Hidden = "(local)"

// URL is s without userinfo, query and fragment. s may be a URL
// (scheme://user:pw@host/p?q) or a scheme-less reference with an authority
// (user:pw@host/p, as a registry prefix is written). For references shown
// back to the person who gave them: a registry, a key, a Sigstore URL.
func URL(s string) string {
	public, _, _, _ := split(s)
	return public
}

// split cuts a reference into what may be shown (scheme, host and path) and
// what never is: the userinfo, the query and the fragment.
func split(s string) (public, userinfo, query, fragment string) {
	rest, fragment, _ := strings.Cut(s, "#")
	rest, query, _ = strings.Cut(rest, "?")
	prefix := ""
	if scheme, authority, ok := strings.Cut(rest, "://"); ok {
		prefix, rest = scheme+"://", authority
	}
	host, _, _ := strings.Cut(rest, "/")
	if i := strings.LastIndex(host, "@"); i >= 0 {
		userinfo, rest = host[:i], rest[i+1:]
	}
	return prefix + rest, userinfo, query, fragment
}

// FlakeRef is the public form of a flake reference, the rule for every
// --override-input wherever it is recorded or shown: a URL keeps its scheme,
// host and path (git+https://host/o/r); an opaque reference keeps what comes
// before its query (github:o/r); a local one keeps only its type
// (path:(local)), whatever path it named.
func FlakeRef(ref string) string {
	if scheme, _, local := localRef(ref); local {
		return scheme + ":" + Hidden
	}
	return URL(ref)
}

// localRef reports whether ref names something on this machine, its type
// (path:, git+file:, file:, tarball+file:, or a bare path) and its path.
func localRef(ref string) (scheme, path string, local bool) {
	scheme, path, ok := strings.Cut(ref, ":")
	switch {
	case !ok || strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, "."):
		return "path", ref, true // a bare path such as /x, ./x or testdata/x
	case strings.HasPrefix(ref, "~"):
		return "path", path, true
	case scheme == "path", scheme == "file", strings.HasSuffix(scheme, "+file"):
		return scheme, path, true
	}
	return scheme, "", false
}

// secrets are the parts of ref that must not be shown, longest first so
// that a part is replaced before a piece of it: credentials, the query and
// its values, the fragment, and with hideLocal a local reference's path.
func secrets(ref string, hideLocal bool) []string {
	var out []string
	add := func(s string) {
		// Shorter pieces would match ordinary words of a message.
		if len(s) >= 4 {
			out = append(out, s)
		}
	}
	if _, path, local := localRef(ref); local && hideLocal {
		path = strings.TrimPrefix(path, "//")
		path, _, _ = strings.Cut(path, "?")
		add(path)
		if abs, err := filepath.Abs(path); err == nil {
			add(abs)
		}
	}
	_, userinfo, query, fragment := split(ref)
	add(fragment)
	add(query)
	for _, kv := range strings.Split(query, "&") {
		_, v, _ := strings.Cut(kv, "=")
		add(v)
	}
	add(userinfo + "@")
	add(userinfo)
	user, password, _ := strings.Cut(userinfo, ":")
	add(password)
	add(user)
	// Nix 2.26 percent-encodes what it quotes of a reference (a path's
	// "=" is "%3D"), so each piece is hidden in that form too.
	for _, piece := range out {
		if esc := percentEncode(piece); esc != piece {
			out = append(out, esc)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// percentEncode encodes s as Nix writes a URL's path and query: every byte
// but the unreserved ones and "/" as %XX.
func percentEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("-._~/", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// FlakeText is s without the secret parts of the flake references refs:
// each quoted whole becomes its FlakeRef, and its credentials, query values
// and local path go wherever a program quoting it its own way shows them.
func FlakeText(s string, refs ...string) string {
	for _, ref := range refs {
		s = scrub(s, ref, true)
	}
	return s
}

// URLError is err with the credentials, query and fragment of the URLs or
// references urls removed from its message (paths stay: they are the
// caller's own); it still unwraps to err for errors.Is and errors.As.
func URLError(err error, urls ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, u := range urls {
		msg = scrub(msg, u, false)
	}
	return &redacted{err: err, msg: msg}
}

// scrub replaces ref quoted whole in s by its public form, then each of its
// secrets wherever it appears.
func scrub(s, ref string, flake bool) string {
	if ref == "" {
		return s
	}
	public := URL(ref)
	if flake {
		public = FlakeRef(ref)
	}
	s = strings.ReplaceAll(s, ref, public)
	for _, secret := range secrets(ref, flake) {
		repl := Hidden
		if strings.HasSuffix(secret, "@") {
			repl = ""
		}
		s = strings.ReplaceAll(s, secret, repl)
	}
	return s
}

type redacted struct {
	err error
	msg string
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }
