#!/usr/bin/env bash
# Turns the action's inputs (environment variables set by action.yml) into
# the argv of one `release` command. Inputs are only ever expanded quoted or
# split into words, never evaluated, so no input can run a command.
set -euo pipefail

# The signing secrets arrive as inputs, given to this step alone. Exported
# only when given, so that a COSIGN_PASSWORD the caller set some other way
# still reaches release.
if [ -n "${SIGNING_KEY:-}" ]; then export COSIGN_PRIVATE_KEY="$SIGNING_KEY"; fi
if [ -n "${SIGNING_PASSWORD:-}" ]; then export COSIGN_PASSWORD="$SIGNING_PASSWORD"; fi
unset SIGNING_KEY SIGNING_PASSWORD

args=()
case "${COMMAND:-release}" in
  release) ;;
  matrix | build | merge) args+=("$COMMAND") ;;
  *)
    echo "::error title=Unknown command::command must be release, matrix, build or merge, not '$COMMAND'"
    exit 2
    ;;
esac

# list_args FLAG LIST: FLAG once for each item of LIST, a list separated by
# commas or newlines, each item trimmed of surrounding space.
list_args() {
  local item
  while IFS= read -r item; do
    item="${item#"${item%%[![:space:]]*}"}"
    item="${item%"${item##*[![:space:]]}"}"
    if [ -n "$item" ]; then args+=("$1" "$item"); fi
  done < <(printf '%s\n' "$2" | tr ',' '\n')
}

# agents and systems are lists like the others: a YAML block of one per line
# gives one --agent each, never one value with newlines in it.
agents=$(printf '%s' "${AGENTS:-}" | tr -d '[:space:]')
if [ -z "$agents" ] || [ "$agents" = all ]; then
  case "${COMMAND:-release}" in
    release) args+=(--all) ;;
    build | merge)
      echo "::error title=Missing agent::command '$COMMAND' needs one agent in 'agents'"
      exit 2
      ;;
  esac
else
  list_args --agent "$AGENTS"
fi

list_args --system "${SYSTEMS:-}"
if [ -n "${FLAKE:-}" ]; then args+=(--flake "$FLAKE"); fi

# Where the release publishes, how it signs and which tags it adds: what a
# push needs, and what `matrix --changed-only` compares with.
registry_args() {
  # One registry or several: each is one --registry, published on its own.
  list_args --registry "${REGISTRY:-}"
  if [ "${INSECURE:-false}" = true ]; then args+=(--insecure); fi
}

sign_args() {
  if [ "${SIGN:-true}" = false ]; then
    args+=(--sign=false)
  elif [ -n "${KEY:-}" ]; then
    args+=(--key "$KEY")
    if [ "${TLOG_UPLOAD:-false}" = true ]; then args+=(--tlog-upload); fi
  fi
}

tag_args() {
  list_args --tag "${TAGS:-}"
}

if [ "${COMMAND:-release}" = matrix ]; then
  args+=(--json)
  if [ -n "${RUNNER_ARM:-}" ]; then args+=(--runner "aarch64-linux=$RUNNER_ARM"); fi
  # Only the agents the registry does not have as they are now: it checks
  # their signatures with the identity the release signs with.
  if [ "${CHANGED_ONLY:-false}" = true ]; then
    args+=(--changed-only)
    registry_args
    sign_args
    if [ -n "${OUTPUT:-}" ]; then args+=(--output "$OUTPUT"); fi
    if [ -n "${GIT_TAG:-}" ]; then args+=(--git-tag "$GIT_TAG"); fi
    tag_args
  fi
else
  # merge always pushes; build and release push when asked.
  if [ "${PUSH:-false}" = true ] && [ "${COMMAND:-release}" != merge ]; then args+=(--push); fi
  registry_args
  if [ -n "${JOBS:-}" ] && [ "${COMMAND:-release}" = release ]; then args+=(--jobs "$JOBS"); fi
  # Whatever pushes signs: build signs its images, merge its index, release
  # everything it pushes. Only a local layout (release without push) is
  # never signed, so it gets no signing flags.
  if [ "${COMMAND:-release}" != release ] || [ "${PUSH:-false}" = true ]; then sign_args; fi
  if [ -n "${OUTPUT:-}" ]; then args+=(--output "$OUTPUT"); fi
  if [ "${COMMAND:-release}" = merge ] && [ -n "${FROM:-}" ]; then args+=(--from "$FROM"); fi
  if [ "${COMMAND:-release}" != build ]; then
    if [ -n "${GIT_TAG:-}" ]; then args+=(--git-tag "$GIT_TAG"); fi
    if [ -n "${PREVIEW:-}" ]; then args+=(--preview "$PREVIEW"); fi
    if [ -n "${SIZE_THRESHOLD:-}" ]; then args+=(--size-threshold "$SIZE_THRESHOLD"); fi
    tag_args
  fi
fi

if [ -n "${EXTRA_ARGS:-}" ]; then
  # Word splitting without globbing: extra arguments, never shell code.
  read -r -a extra <<<"${EXTRA_ARGS//$'\n'/ }"
  args+=("${extra[@]}")
fi

# The arguments are not echoed: an --override-input in extra-args can hold
# a token, and release prints what it does without it.
exec release "${args[@]}"
