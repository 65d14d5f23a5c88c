package changes

import (
	"context"
	"fmt"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/nothingnesses/agent-images/tags"
)

// resolve returns the digest ref names now.
func resolve(ctx context.Context, ref name.Reference, remoteOpts []remote.Option) (name.Digest, error) {
	if d, ok := ref.(name.Digest); ok {
		return d, nil
	}
	desc, err := remote.Head(ref, append(slices.Clip(remoteOpts), remote.WithContext(ctx))...)
	if err != nil {
		return name.Digest{}, fmt.Errorf("resolving %s: %w", ref, err)
	}
	return ref.Context().Digest(desc.Digest.String()), nil
}

// previous finds the release before to in its repository: walking the dated
// tags from the newest, past the ones that point at to, the first that
// points elsewhere. It returns that release's digest and its dated tag. A
// release with no dated tag (a digest no release tagged, or one whose tags
// were pruned) has no "before" to find: a *NoPreviousError.
func previous(ctx context.Context, to name.Digest, remoteOpts []remote.Option) (name.Digest, string, error) {
	remoteOpts = append(slices.Clip(remoteOpts), remote.WithContext(ctx))
	repo := to.Context()
	all, err := remote.List(repo, remoteOpts...)
	if err != nil {
		return name.Digest{}, "", fmt.Errorf("listing the tags of %s: %w", repo, err)
	}
	dated := slices.DeleteFunc(all, func(t string) bool { return !tags.IsDated(t) })
	slices.Sort(dated)
	slices.Reverse(dated)
	seen := false
	for _, t := range dated {
		desc, err := remote.Head(repo.Tag(t), remoteOpts...)
		if err != nil {
			return name.Digest{}, "", fmt.Errorf("resolving %s: %w", repo.Tag(t), err)
		}
		if desc.Digest.String() == to.DigestStr() {
			seen = true
			continue
		}
		if seen {
			return repo.Digest(desc.Digest.String()), t, nil
		}
	}
	return name.Digest{}, "", &NoPreviousError{To: to, Dated: seen}
}

// NoPreviousError is why there is no release before To to compare it with:
// no dated tag points at it, or (Dated) none older than those that do.
type NoPreviousError struct {
	To    name.Digest
	Dated bool
}

func (e *NoPreviousError) Error() string {
	if !e.Dated {
		return fmt.Sprintf("no dated tag (YYYY-MM-DD) of %s points at %s, so there is no release before it to find", e.To.Context(), e.To.DigestStr())
	}
	return fmt.Sprintf("no dated tag of %s older than the ones pointing at %s: it is the first dated release", e.To.Context(), e.To.DigestStr())
}
