#!/usr/bin/env bash
# Commits flake.lock on BRANCH and opens (or refreshes) its pull request:
# how update-flake.yml proposes every bump, and how the first flake.lock
# reaches the repository when ci.yml or update-flake.yml had to create it.
# Usage: flake-pr.sh BRANCH TITLE BODY; GH_TOKEN must allow contents and
# pull-requests write. Does nothing when flake.lock is unchanged.
set -euo pipefail
branch=$1 title=$2 body=$3

# An untracked flake.lock (the first one) counts as a change too.
if [ -z "$(git status --porcelain -- flake.lock)" ]; then
  echo "flake.lock is unchanged"
  exit 0
fi
git config user.name "github-actions[bot]"
git config user.email "41898282+github-actions[bot]@users.noreply.github.com"
git switch -C "$branch"
git add flake.lock
git commit -m "$title" -m "$body"
git push --force origin "$branch"
if [ -n "$(gh pr list --head "$branch" --state open --json number --jq '.[].number')" ]; then
  gh pr edit "$branch" --title "$title" --body "$body"
else
  gh pr create --head "$branch" --title "$title" --body "$body"
fi
