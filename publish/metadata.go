package publish

import (
	"fmt"
	"maps"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// The OCI annotation keys an index carries for registries to show. GHCR
// reads a multi-arch package's description, licence and source from the
// annotations of its index, not from the images' config labels.
const (
	AnnotationDescription   = "org.opencontainers.image.description"
	AnnotationLicenses      = "org.opencontainers.image.licenses"
	AnnotationURL           = "org.opencontainers.image.url"
	AnnotationDocumentation = "org.opencontainers.image.documentation"
	AnnotationVendor        = "org.opencontainers.image.vendor"
	AnnotationAuthors       = "org.opencontainers.image.authors"
)

// described are the config labels that say what an image is rather than
// which release it belongs to: the index repeats those its images agree on.
var described = []string{
	AnnotationTitle, AnnotationDescription, AnnotationLicenses, AnnotationURL,
	AnnotationDocumentation, AnnotationVendor, AnnotationAuthors, AnnotationSource,
}

// MaxDescription is the longest description GHCR shows; a longer one is cut
// on the index, where GHCR reads it, with an ellipsis.
const MaxDescription = 512

// indexAnnotations are the annotations of rel's index, from the lowest
// precedence to the highest: what every image's config says of it
// (described), rel.Annotations, defaults derived from the source (url,
// documentation, vendor), and the version and time that order releases.
func indexAnnotations(rel Release) (map[string]string, error) {
	out := map[string]string{}
	for i, img := range rel.Images {
		cf, err := img.Image.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("reading the config of %s: %w", img, err)
		}
		labels := cf.Config.Labels
		for _, k := range described {
			v, ok := labels[k]
			switch {
			case i == 0 && ok && v != "":
				out[k] = v
			case i > 0 && out[k] != v:
				delete(out, k) // the images disagree: the index says nothing
			}
		}
	}
	maps.Copy(out, rel.Annotations)
	for k, v := range SourceDefaults(out[AnnotationSource]) {
		if out[k] == "" {
			out[k] = v
		}
	}
	if d, ok := out[AnnotationDescription]; ok {
		out[AnnotationDescription] = clip(d, MaxDescription)
	}
	if rel.Version != "" {
		out[AnnotationVersion] = rel.Version
	}
	if !rel.Created.IsZero() {
		out[AnnotationCreated] = rel.Created.UTC().Format(time.RFC3339)
	}
	return out, nil
}

// SourceDefaults are the annotations a repository's web address implies
// when the flake's labels do not say otherwise: url is the repository, its
// documentation its README, its vendor the repository's owner. None for an
// address that is not one.
func SourceDefaults(source string) map[string]string {
	u, err := url.Parse(source)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil
	}
	owner, _, _ := strings.Cut(strings.Trim(u.Path, "/"), "/")
	out := map[string]string{AnnotationURL: source, AnnotationDocumentation: source + "#readme"}
	if owner != "" {
		out[AnnotationVendor] = owner
	}
	return out
}

// ValidateSource says why s cannot be the source annotation: it must be the
// https address of a repository, without credentials, query or fragment,
// since registries link to it and show it to everyone.
func ValidateSource(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a URL: give the repository's web address, such as https://github.com/OWNER/REPO", s)
	case u.User != nil:
		return fmt.Errorf("the address holds credentials (user@ or user:password@): give the repository's public web address")
	case u.Scheme != "https" || u.Host == "":
		return fmt.Errorf("%q is not an https address: give the repository's web address, such as https://github.com/OWNER/REPO", s)
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%q has a query or fragment: give the repository's plain web address", s)
	}
	return nil
}

// clip cuts s to at most n characters, the last an ellipsis, on a rune
// boundary.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimRight(string(r[:n-1]), " ") + "…"
}
