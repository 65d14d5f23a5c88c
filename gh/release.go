package gh

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-github/v62/github"
)

// ReleaseNotes is the body of a tag's GitHub Release: one row per agent with
// its index digest, its tags and the command that verifies it.
func ReleaseNotes(tag string, agents []Published) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Agent images released from %s. Pull by digest to get exactly these bytes.\n\n", tag)
	b.WriteString("| Agent | Index digest | Tags | Verify |\n|---|---|---|---|\n")
	for _, p := range agents {
		tags := make([]string, len(p.Tags))
		for i, t := range p.Tags {
			tags[i] = "`" + t + "`"
		}
		verify := p.Verify
		if verify == "" {
			verify = "release verify --agent " + p.Agent
		}
		fmt.Fprintf(&b, "| %s | %s | %s | `%s` |\n", p.Agent, whereCell(p), strings.Join(tags, " "), cell(verify))
	}
	b.WriteString(NotesSection(notesOf(agents)))
	if section := ChangesSectionWithin(changesOf(agents), maxReleaseBody-b.Len()-2); section != "" {
		b.WriteString("\n" + section)
	}
	return b.String()
}

// maxReleaseBody is the most a GitHub Release's notes may hold.
const maxReleaseBody = 125000

// cell keeps a value inside one Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "`", "'").Replace(s)
}

// PublishRelease creates the GitHub Release of tag with the release notes,
// or updates its notes if it exists (a re-run of the same tag), so the
// release always lists what the registry holds now.
func (c *Client) PublishRelease(ctx context.Context, tag string, agents []Published) (*github.RepositoryRelease, error) {
	if err := c.needRepository("publishing the release of " + tag); err != nil {
		return nil, err
	}
	body := ReleaseNotes(tag, agents)
	var existing *github.RepositoryRelease
	err := c.call(ctx, "reading the release of "+tag, func() (*github.Response, error) {
		r, resp, err := c.api.Repositories.GetReleaseByTag(ctx, c.owner, c.repo, tag)
		existing = r
		return resp, err
	})
	switch {
	case errors.Is(err, ErrNotFound):
		var created *github.RepositoryRelease
		err := c.call(ctx, "creating the release of "+tag, func() (*github.Response, error) {
			r, resp, err := c.api.Repositories.CreateRelease(ctx, c.owner, c.repo, &github.RepositoryRelease{
				TagName: github.String(tag),
				Name:    github.String(tag),
				Body:    github.String(body),
			})
			created = r
			return resp, err
		})
		return created, err
	case err != nil:
		return nil, err
	}
	var updated *github.RepositoryRelease
	err = c.call(ctx, "updating the release of "+tag, func() (*github.Response, error) {
		r, resp, err := c.api.Repositories.EditRelease(ctx, c.owner, c.repo, existing.GetID(), &github.RepositoryRelease{
			Body: github.String(body),
		})
		updated = r
		return resp, err
	})
	return updated, err
}
