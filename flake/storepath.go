package flake

import (
	"regexp"
	"slices"
	"strings"
)

// StorePath is a store path's base name, split.
type StorePath struct {
	// Hash is the 32 characters of Nix's base32 before the first dash.
	Hash    string
	Name    string
	Version string
	// Output is the derivation output the name ends in ("bin", "dev", …),
	// "" for the default output, whose name has no suffix.
	Output string
}

// nixHash is a store path's hash part: 32 characters of Nix's base32.
var nixHash = regexp.MustCompile(`^[0-9abcdfghijklmnpqrsvwxyz]{32}$`)

// outputNames are the derivation outputs nixpkgs names paths after; a
// version ending in "-<one of them>" is that output of the package. The
// list is closed on purpose: a version such as "1.0-rc" must stay whole.
var outputNames = []string{"bin", "dev", "devdoc", "doc", "info", "lib", "libexec", "man", "static", "debug", "terminfo", "dist"}

// ParseStorePath splits a store path's base name the way Nix's builtins.parseDrvName
// does: the version starts at the first dash that is not followed by a
// letter ("bash-interactive-5.2p37" -> bash-interactive, 5.2p37). A version
// ending in an output name loses it to Output ("glibc-2.40-66-bin" ->
// glibc, 2.40-66, bin), so that the version is the package's. ok is false
// for names that are not store paths.
func ParseStorePath(base string) (n StorePath, ok bool) {
	hash, rest, found := strings.Cut(base, "-")
	if !found || !nixHash.MatchString(hash) || rest == "" {
		return StorePath{}, false
	}
	n = StorePath{Hash: hash, Name: rest}
	for i := 0; i < len(rest)-1; i++ {
		if rest[i] == '-' && !isLetter(rest[i+1]) {
			n.Name, n.Version = rest[:i], rest[i+1:]
			break
		}
	}
	if i := strings.LastIndex(n.Version, "-"); i >= 0 && slices.Contains(outputNames, n.Version[i+1:]) {
		n.Version, n.Output = n.Version[:i], n.Version[i+1:]
	}
	return n, true
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
