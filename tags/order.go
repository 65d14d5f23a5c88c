package tags

import (
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
	switch {
	case !k.Created.Equal(other.Created):
		return k.Created.After(other.Created)
	default:
		return CompareVersions(k.Version, other.Version) > 0
	}
}

// CompareVersions compares two versions the way Nix's
// builtins.compareVersions does, and returns -1, 0 or 1. Versions split into
// components at '.' and '-' and between digits and other characters;
// numbers compare as numbers, "pre" sorts before anything, other strings
// sort below numbers and among themselves as strings, and a missing
// component sorts below a number ("2.3" < "2.3.1", "2.3a" < "2.3.1").
func CompareVersions(a, b string) int {
	for a != "" || b != "" {
		var ca, cb string
		ca, a = nextComponent(a)
		cb, b = nextComponent(b)
		switch {
		case componentLess(ca, cb):
			return -1
		case componentLess(cb, ca):
			return 1
		}
	}
	return 0
}

func nextComponent(s string) (component, rest string) {
	s = strings.TrimLeft(s, ".-")
	if s == "" {
		return "", ""
	}
	digit := isDigit(s[0])
	i := 1
	for i < len(s) && s[i] != '.' && s[i] != '-' && isDigit(s[i]) == digit {
		i++
	}
	return s[:i], s[i:]
}

func componentLess(a, b string) bool {
	na, nb := isNumber(a), isNumber(b)
	switch {
	case na && nb:
		a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
		if len(a) != len(b) {
			return len(a) < len(b)
		}
		return a < b
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

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isNumber(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }
