package publish

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/nothingnesses/agent-images/internal/redact"
)

// Prefix is the repository prefix a release publishes under: each agent
// goes to <prefix>/<agent>.
type Prefix struct {
	s    string
	opts []name.Option
}

// ParsePrefix checks a registry prefix such as ghcr.io/owner/agent-images
// or 127.0.0.1:5000/x before anything is built. It refuses a scheme,
// credentials (they would be copied into logs and reports) and a port out
// of range; insecure allows plain HTTP.
func ParsePrefix(s string, insecure bool) (Prefix, error) {
	s = strings.TrimSuffix(s, "/")
	if s == "" {
		return Prefix{}, fmt.Errorf("empty: want a repository prefix such as ghcr.io/OWNER/agent-images")
	}
	if pub := redact.URL(s); pub != s {
		// Named without what it holds: that is a secret.
		host, _, _ := strings.Cut(pub, "/")
		return Prefix{}, fmt.Errorf("%s holds credentials (user:password@) or a query, which would be printed with it: log in with `docker login %s` (or a Docker config, or GITHUB_TOKEN for ghcr.io) and pass the plain prefix", pub, host)
	}
	host, _, _ := strings.Cut(s, "/")
	if strings.Contains(s, "://") {
		return Prefix{}, fmt.Errorf("%q has a scheme: give host[:port]/path, and --insecure for plain HTTP", s)
	}
	if h, port, ok := strings.Cut(host, ":"); ok && !strings.HasPrefix(h, "[") {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return Prefix{}, fmt.Errorf("%q: port %q is not a number from 1 to 65535", s, port)
		}
	}
	if _, path, ok := strings.Cut(s, "/"); ok {
		for _, seg := range strings.Split(path, "/") {
			if !pathComponent.MatchString(seg) {
				return Prefix{}, fmt.Errorf("%q is not a repository prefix: its path part %q is not a registry path component (lowercase letters and digits, separated by '.', '_', '__' or '-')", s, seg)
			}
		}
	}
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	if _, err := name.NewRepository(s+"/x", opts...); err != nil {
		return Prefix{}, fmt.Errorf("%q is not a repository prefix: %w", s, err)
	}
	return Prefix{s: s, opts: opts}, nil
}

// pathComponent is one component of a repository's path, as the OCI
// distribution spec allows it: no "..", no upper case.
var pathComponent = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$`)

// Repository is <prefix>/<agent>. The agent is one path component: a name
// a registry cannot hold, or one that would reach outside the prefix
// ("../x"), is an error.
func (p Prefix) Repository(agent string) (name.Repository, error) {
	if !pathComponent.MatchString(agent) {
		return name.Repository{}, fmt.Errorf("agent %q cannot be a repository name under %s: want lowercase letters and digits, separated by '.', '_', '__' or '-'", agent, p.s)
	}
	return name.NewRepository(p.s+"/"+agent, p.opts...)
}

func (p Prefix) String() string { return p.s }
