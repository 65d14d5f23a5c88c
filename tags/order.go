package tags

import (
	"regexp"
	"strings"
	"time"
)

// Key orders releases of one agent: the source commit's time, then the
// version. An index without a time (published before it was recorded) is
// older than any index with one.
type Key struct {
	Created time.Time
	Version string
}

// Newer reports whether k orders strictly after other.
func (k Key) Newer(other Key) bool {
	if !k.Created.Equal(other.Created) {
		return k.Created.After(other.Created)
	}
	return CompareVersions(k.Version, other.Version) > 0
}

// versionComponent is one component of a version: a run of digits, or of
// anything else but the separators '.' and '-'.
var versionComponent = regexp.MustCompile(`[0-9]+|[^0-9.-]+`)

// CompareVersions compares two versions the way Nix's
// builtins.compareVersions does, and returns -1, 0 or 1. Versions split into
// components at '.' and '-' and between digits and other characters;
// numbers compare as numbers, "pre" sorts before anything, other strings
// sort below numbers and among themselves as strings, and a missing
// component sorts below a number ("2.3" < "2.3.1", "2.3a" < "2.3.1").
func CompareVersions(a, b string) int {
	ca, cb := versionComponent.FindAllString(a, -1), versionComponent.FindAllString(b, -1)
	n := max(len(ca), len(cb))
	ca = append(ca, make([]string, n-len(ca))...)
	cb = append(cb, make([]string, n-len(cb))...)
	for i := range n {
		switch {
		case componentLess(ca[i], cb[i]):
			return -1
		case componentLess(cb[i], ca[i]):
			return 1
		}
	}
	return 0
}

func componentLess(a, b string) bool {
	na, nb := isNumber(a), isNumber(b)
	switch {
	case na && nb:
		a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
		return len(a) < len(b) || len(a) == len(b) && a < b
	case a == "" && nb:
		return true
	case a == "pre" && b != "pre":
		return true
	case b == "pre":
		return false
	case nb:
		return true
	case na:
		return false
	}
	return a < b
}

// isNumber reports whether a component is a number: components are all
// digits or none.
func isNumber(s string) bool { return s != "" && s[0] >= '0' && s[0] <= '9' }
