// Package pullpolicy owns signature-enforcing pulls: the containers trust
// policy (policy.json, containers-policy.json(5)) and the registries.d entry
// (containers-registries.d(5)) that make Podman, Buildah, Skopeo and CRI-O
// accept images under a registry prefix only when this project's release
// identity signed them, and where those files go.
package pullpolicy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/tuf"
)

// GitHubIssuer is the OIDC issuer of GitHub Actions' keyless signatures.
const GitHubIssuer = "https://token.actions.githubusercontent.com"

// Signer is who must have signed an image, a public key or a keyless
// workflow identity, as one sigstoreSigned requirement.
type Signer struct {
	requirement map[string]any
	// caveat is what to know before installing a policy for this signer.
	caveat string
	name   string
}

func (s *Signer) String() string { return s.name }

// PublicKey is a signer known by its public key, as `release keygen` or
// `cosign generate-key-pair` write it (a PEM "PUBLIC KEY" block).
func PublicKey(pemBytes []byte) (*Signer, error) {
	if _, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes); err != nil {
		return nil, fmt.Errorf("reading the public key: %w (want the PEM file release keygen wrote, e.g. cosign.pub)", err)
	}
	return &Signer{
		requirement: map[string]any{"type": "sigstoreSigned", "keyData": bytes.TrimSpace(pemBytes)},
		name:        "the holder of the given public key",
	}, nil
}

// Workflow is a keyless signer: a CI workflow that signed with a short-lived
// Fulcio certificate and logged the signature in Rekor.
type Workflow struct {
	// Identity is the workflow file at its ref, e.g.
	// https://github.com/OWNER/REPO/.github/workflows/release.yml@refs/heads/main;
	// a policy matches it exactly, as the certificate's Build Signer URI.
	Identity string
	// Issuer is the OIDC issuer, GitHubIssuer for GitHub Actions.
	Issuer string
	// FulcioRoots are the PEM certificates of the Fulcio CA; RekorKeys the
	// PEM public keys of the Rekor log. Without them, Sigstore's.
	FulcioRoots []byte
	RekorKeys   [][]byte
}

var workflowIdentity = regexp.MustCompile(`^https://[^/]+/[^/]+/[^/]+/\.github/workflows/[^@/]+\.ya?ml@refs/(heads|tags)/.+$`)

// KeylessWorkflow checks w and returns it as a Signer. Without FulcioRoots
// and RekorKeys it takes Sigstore's public-good ones (trustedRoot).
func KeylessWorkflow(ctx context.Context, w Workflow) (*Signer, error) {
	if !workflowIdentity.MatchString(w.Identity) {
		return nil, fmt.Errorf("certificate identity %q is not a workflow at a ref: want https://github.com/OWNER/REPO/.github/workflows/FILE.yml@refs/heads/BRANCH (or @refs/tags/TAG)", w.Identity)
	}
	if !strings.HasPrefix(w.Issuer, "https://") {
		return nil, fmt.Errorf("OIDC issuer %q is not an https URL (GitHub Actions: %s)", w.Issuer, GitHubIssuer)
	}
	if len(w.FulcioRoots) == 0 && len(w.RekorKeys) == 0 {
		var err error
		if w.FulcioRoots, w.RekorKeys, err = trustedRoot(ctx); err != nil {
			return nil, err
		}
	}
	certs, err := cryptoutils.UnmarshalCertificatesFromPEM(w.FulcioRoots)
	if err != nil || len(certs) == 0 {
		return nil, fmt.Errorf("reading the Fulcio CA certificates: want PEM certificates (%v)", err)
	}
	if len(w.RekorKeys) == 0 {
		return nil, errors.New("a keyless policy needs the Rekor public key: without it nothing proves the short-lived certificate was valid when the image was signed")
	}
	for i, k := range w.RekorKeys {
		if _, err := cryptoutils.UnmarshalPEMToPublicKey(k); err != nil {
			return nil, fmt.Errorf("reading Rekor public key %d: %w", i+1, err)
		}
		w.RekorKeys[i] = bytes.TrimSpace(k)
	}
	r := map[string]any{
		"type": "sigstoreSigned",
		"fulcio": map[string]any{
			"caData":         bytes.TrimSpace(w.FulcioRoots),
			"oidcIssuer":     w.Issuer,
			"buildSignerURI": w.Identity,
		},
	}
	// The plural form is newer; one key keeps the policy readable by more
	// versions of containers/image.
	if len(w.RekorKeys) == 1 {
		r["rekorPublicKeyData"] = w.RekorKeys[0]
	} else {
		r["rekorPublicKeyDatas"] = w.RekorKeys
	}
	return &Signer{requirement: r, caveat: KeylessCaveat, name: fmt.Sprintf("workflow %s (issuer %s)", w.Identity, w.Issuer)}, nil
}

// KeylessCaveat is why a keyless policy cannot be installed yet: checked
// against containers/image up to v5.42.1 (pullpolicy and sign tests).
const KeylessCaveat = "no released Podman, Buildah, Skopeo or CRI-O verifies a workflow identity yet: " +
	"containers/image (newest checked: v5.42.1) matches only the e-mail of a Fulcio certificate and rejects " +
	"this policy's fulcio.buildSignerURI as an unknown key, and a policy it cannot load fails every pull, " +
	"from any registry. Install it only where `man containers-policy.json` documents buildSignerURI; " +
	"until then check images with release verify, or release with --key and write the policy with --key."

// trustedRoot returns the public-good Sigstore Fulcio CA certificates and
// Rekor public keys from Sigstore's TUF repository, the way cosign verify
// gets them (cached under ~/.sigstore; TUF_ROOT moves the cache). It needs
// the network the first time.
func trustedRoot(ctx context.Context) (fulcioRoots []byte, rekorKeys [][]byte, err error) {
	client, err := tuf.NewFromEnv(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("reading Sigstore's TUF repository: %w (it needs the network the first time)", err)
	}
	fulcio, err := client.GetTargetsByMeta(tuf.Fulcio, []string{"fulcio.crt.pem", "fulcio_v1.crt.pem"})
	if err != nil {
		return nil, nil, fmt.Errorf("getting the Fulcio CA from Sigstore's TUF repository: %w", err)
	}
	rekor, err := client.GetTargetsByMeta(tuf.Rekor, []string{"rekor.pub"})
	if err != nil {
		return nil, nil, fmt.Errorf("getting the Rekor key from Sigstore's TUF repository: %w", err)
	}
	var roots bytes.Buffer
	for _, t := range fulcio {
		roots.Write(bytes.TrimSpace(t.Target))
		roots.WriteByte('\n')
	}
	for _, t := range rekor {
		if t.Status == tuf.Active {
			rekorKeys = append(rekorKeys, t.Target)
		}
	}
	return roots.Bytes(), rekorKeys, nil
}

// Files are what Generate writes: a complete policy.json and one
// registries.d file.
type Files struct {
	Policy []byte
	// RegistriesDName is the file name for the registries.d directory,
	// the prefix's: ghcr.io-nothingnesses-agent-images.yaml.
	RegistriesDName string
	RegistriesD     []byte
	// Caveat, when set, is what to know before installing the files.
	Caveat string
}

// Generate returns the policy.json and registries.d entry that accept images
// under prefix (a registry host, or a host and repository namespace, like
// ghcr.io/nothingnesses/agent-images) only when signer signed them, checked
// against the repository they are pulled from.
//
// A base (an existing policy.json) keeps its default and other scopes, and
// the prefix's entry is replaced. Without one (nil) the policy rejects every
// other registry, as containers-policy.json(5) recommends, and accepts local
// archives and storage (podman load, pushing your own builds) as before.
func Generate(prefix string, signer *Signer, base []byte) (*Files, error) {
	if base != nil && len(bytes.TrimSpace(base)) == 0 {
		return nil, errors.New("the base policy is empty")
	}
	if signer == nil {
		return nil, errors.New("no signer: give a public key or a keyless workflow identity")
	}
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	req := maps.Clone(signer.requirement)
	// cosign signs the repository, not a tag, so the signature's identity
	// can only match the repository the image comes from.
	req["signedIdentity"] = map[string]any{"type": "matchRepository"}

	policy := map[string]any{}
	if base != nil {
		if err := json.Unmarshal(base, &policy); err != nil {
			return nil, fmt.Errorf("reading the base policy: %w", err)
		}
		if _, ok := policy["default"]; !ok {
			return nil, errors.New("the base policy has no \"default\": it is not a containers-policy.json(5) file")
		}
	} else {
		policy["default"] = []any{map[string]any{"type": "reject"}}
		local := map[string]any{"": []any{map[string]any{"type": "insecureAcceptAnything"}}}
		transports := map[string]any{}
		for _, t := range []string{"docker-archive", "oci-archive", "oci", "dir", "containers-storage", "docker-daemon"} {
			transports[t] = local
		}
		policy["transports"] = transports
	}
	transports, err := member(policy, "transports")
	if err != nil {
		return nil, err
	}
	docker, err := member(transports, "docker")
	if err != nil {
		return nil, errors.New(`the base policy's "transports.docker" is not an object`)
	}
	// containers/image decides an image by the most specific scope that
	// matches it: a base scope under the prefix (one agent's repository,
	// a tag, a digest) would decide for those images instead of the
	// signature required here, whatever it says.
	for _, scope := range slices.Sorted(maps.Keys(docker)) {
		if rest, ok := strings.CutPrefix(scope, prefix); ok && rest != "" && strings.ContainsAny(rest[:1], "/:@") {
			return nil, fmt.Errorf("the base policy's scope %q is under %s: it would decide for those images instead of the signature this policy requires (the most specific scope wins); remove it from the base", scope, prefix)
		}
	}
	docker[prefix] = []any{req}

	pj, err := json.MarshalIndent(policy, "", "    ")
	if err != nil {
		return nil, err
	}
	reg := fmt.Sprintf(`# Read sigstore signatures (cosign's .sig tags) of images under %s,
# so that policy.json can require them. Written by release policy.
docker:
  %s:
    use-sigstore-attachments: true
`, prefix, prefix)
	return &Files{
		Policy:          append(pj, '\n'),
		RegistriesDName: strings.NewReplacer("/", "-", ":", "-").Replace(prefix) + ".yaml",
		RegistriesD:     []byte(reg),
		Caveat:          signer.caveat,
	}, nil
}

// member is the object under key in obj, made when there is none.
func member(obj map[string]any, key string) (map[string]any, error) {
	m, ok := obj[key].(map[string]any)
	switch {
	case ok:
		return m, nil
	case obj[key] != nil:
		return nil, fmt.Errorf("the base policy's %q is not an object", key)
	}
	m = map[string]any{}
	obj[key] = m
	return m, nil
}

// Write puts the files into dir as policy.json and
// registries.d/<RegistriesDName>, and returns their paths. It never
// overwrites: a file that exists is an error, and nothing is written.
func (f *Files) Write(dir string) (policy, registriesD string, err error) {
	policy = filepath.Join(dir, "policy.json")
	registriesD = filepath.Join(dir, "registries.d", f.RegistriesDName)
	for _, p := range []string{policy, registriesD} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("%s exists: remove it or write somewhere else", p)
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", "", err
		}
	}
	if err := os.MkdirAll(filepath.Dir(registriesD), 0o755); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(policy, f.Policy, 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(registriesD, f.RegistriesD, 0o644); err != nil {
		return "", "", err
	}
	return policy, registriesD, nil
}

// checkPrefix accepts the scopes containers-policy.json(5) matches: a
// registry host[:port], optionally with a repository namespace, in fully
// expanded form (docker.io/library/x, not x), without tag or digest.
func checkPrefix(prefix string) error {
	if prefix == "" {
		return errors.New("no registry prefix: give one like ghcr.io/nothingnesses/agent-images")
	}
	host, path, hasPath := strings.Cut(prefix, "/")
	if !strings.ContainsAny(host, ".:") && host != "localhost" {
		return fmt.Errorf("registry prefix %q must start with a registry host (e.g. ghcr.io/%s or docker.io/%s): policies match fully expanded names", prefix, prefix, prefix)
	}
	if strings.HasSuffix(prefix, "/") || strings.ContainsAny(prefix, "@ ") {
		return fmt.Errorf("registry prefix %q must be a registry or repository namespace, without a trailing slash, tag or digest", prefix)
	}
	if !hasPath {
		if _, err := name.NewRegistry(prefix, name.StrictValidation); err != nil {
			return fmt.Errorf("registry prefix %q: %w", prefix, err)
		}
		return nil
	}
	if strings.Contains(path, ":") {
		return fmt.Errorf("registry prefix %q must not carry a tag", prefix)
	}
	if _, err := name.NewRepository(prefix, name.StrictValidation); err != nil {
		return fmt.Errorf("registry prefix %q is not a repository namespace: %w", prefix, err)
	}
	return nil
}

// Location is where one kind of user puts the two files.
type Location struct {
	For         string
	Policy      string
	RegistriesD string // a directory
	Note        string
}

// Locations are where Podman, Buildah, Skopeo and CRI-O read the files.
var Locations = []Location{
	{
		For:         "system-wide: Podman, Buildah and Skopeo as root, CRI-O, and every user without files of their own",
		Policy:      "/etc/containers/policy.json",
		RegistriesD: "/etc/containers/registries.d",
		Note:        "CRI-O reads the policy named by signature_policy in crio.conf (default this one) and checks it on every pull.",
	},
	{
		For:         "one user: rootless Podman, Buildah and Skopeo",
		Policy:      "~/.config/containers/policy.json",
		RegistriesD: "~/.config/containers/registries.d",
		Note:        "Either file, once it exists, replaces the system-wide one for that user: copy what you still need from /etc/containers/registries.d too.",
	},
}
