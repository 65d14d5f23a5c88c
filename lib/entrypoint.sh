#!@shell@
# agent-images-entrypoint: runs the image's program with a HOME it can write.
#
# The image's HOME and XDG directories belong to the image's user (uid @uid@).
# A container started as another uid (docker run --user, podman run
# --userns=keep-id --user, which is how agent-box runs images) cannot write
# them, and making them writable for every uid would weaken the image for its
# own user. So for such a uid, and only then, this makes a private HOME under
# $TMPDIR (default /tmp), laid out like the image's: the image's HOME
# directories are created afresh, and whatever else the image's HOME holds (a
# file, a directory mounted from the host such as ~/.config/app) is linked in
# at the same place. XDG variables that name a directory the uid cannot write
# move along. A uid or gid that /etc/passwd or /etc/group does not name
# (docker run --user, podman run --passwd=false) gets an entry appended to
# those files, which the image makes writable for this: every program then
# finds the user, whatever C library it was built with and whether it is
# linked statically (Go's os/user reads /etc/passwd itself) or dynamically
# (glibc's files backend), so whoami, id -un, ssh, git and Node's
# os.userInfo() answer. Nothing is preloaded into the program. For the
# image's own user it only runs its arguments.
#
# `--entrypoint sh` bypasses this; `--entrypoint agent-images-entrypoint IMAGE
# sh` keeps it.

if [ "$#" -eq 0 ]; then
  echo "usage: agent-images-entrypoint COMMAND [ARG...]" >&2
  exit 64
fi

writable() { [ -d "$1" ] && [ -w "$1" ]; }

# The XDG base directory variables and their place relative to HOME.
xdg_vars='@xdgVars@'

# named: the uid and gid have passwd and group entries (the image's own, or
# those Podman adds for --user).
named() { @coreutils@/bin/id -un >/dev/null 2>&1 && @coreutils@/bin/id -gn >/dev/null 2>&1; }

settled=1
writable "${HOME-}" || settled=
for pair in $xdg_vars; do
  eval "dir=\${${pair%%:*}-}"
  if [ -n "$dir" ] && ! writable "$dir"; then settled=; fi
done
if [ -n "$settled" ] && named; then
  exec "$@"
fi

uid=$(@coreutils@/bin/id -u)
old=${HOME-}

warn() { printf 'agent-images-entrypoint: %s\n' "$*" >&2; }

# Directories of the image's HOME (relative to it) that are recreated in a
# private HOME rather than linked: they belong to the image's user.
is_skeleton() {
  case "$1" in
    @skeleton@) return 0 ;;
  esac
  return 1
}

# mirror OLD NEW REL fills NEW/REL with a link to every entry of OLD/REL,
# except directories of the image's HOME that this uid cannot write, which
# become directories of its own, mirrored in turn.
mirror() (
  for entry in "$1${3:+/$3}"/* "$1${3:+/$3}"/.[!.]* "$1${3:+/$3}"/..?*; do
    [ -e "$entry" ] || [ -L "$entry" ] || continue
    rel=${3:+$3/}${entry##*/}
    if [ -e "$2/$rel" ] || [ -L "$2/$rel" ]; then
      continue
    fi
    if is_skeleton "$rel" && [ -d "$entry" ] && [ ! -L "$entry" ] && [ ! -w "$entry" ]; then
      @coreutils@/bin/mkdir "$2/$rel" && mirror "$1" "$2" "$rel"
    else
      @coreutils@/bin/ln -s "$entry" "$2/$rel"
    fi
  done
)

# private DIR: DIR is a real directory of this uid, now mode 0700.
private() {
  [ ! -L "$1" ] && [ -d "$1" ] && [ "$(@coreutils@/bin/stat -c %u "$1")" = "$uid" ] &&
    @coreutils@/bin/chmod 0700 "$1"
}

if ! writable "$old"; then
  new=${TMPDIR:-/tmp}/agent-home-$uid
  if @coreutils@/bin/mkdir -m 0700 "$new" 2>/dev/null || private "$new"; then
    if [ -n "$old" ] && [ -d "$old" ]; then
      mirror "$old" "$new" ""
    fi
    for rel in @skeletonList@; do
      @coreutils@/bin/mkdir -p "$new/$rel"
    done
    HOME=$new
    export HOME
  else
    warn "HOME ($old) is not writable by uid $uid, and $new is not a directory of uid $uid to use instead; HOME stays $old"
  fi
fi

for pair in $xdg_vars; do
  var=${pair%%:*}
  eval "dir=\${$var-}"
  if [ -z "$dir" ] || writable "$dir"; then
    continue
  fi
  # Below the old HOME it keeps its place in the new one; elsewhere it takes
  # its default place.
  if [ -n "$old" ] && [ "${dir#"$old"/}" != "$dir" ]; then
    dir=$HOME/${dir#"$old"/}
  else
    dir=$HOME/${pair#*:}
  fi
  if @coreutils@/bin/mkdir -p "$dir" 2>/dev/null; then
    export "$var=$dir"
  fi
done
# add FILE LINE appends LINE to FILE, after a newline if FILE lacks a final one.
add() {
  {
    if [ -s "$1" ] && [ -n "$(@coreutils@/bin/tail -c 1 "$1")" ]; then echo; fi
    printf '%s\n' "$2"
  } 2>/dev/null >> "$1"
}

if ! named; then
  gid=$(@coreutils@/bin/id -g)
  # The name is the number, as Podman names such a user.
  if ! @coreutils@/bin/id -un >/dev/null 2>&1 &&
    ! add /etc/passwd "$uid:x:$uid:$gid:container user:$HOME:/bin/sh"; then
    warn "uid $uid is not in /etc/passwd, which cannot be written (a read-only root filesystem?); programs that look the user up (whoami, ssh) will fail. Run as uid @uid@, or let the runtime add the entry (Podman does unless --passwd=false)"
  fi
  if ! @coreutils@/bin/id -gn >/dev/null 2>&1 && ! add /etc/group "$gid:x:$gid:"; then
    warn "gid $gid is not in /etc/group, which cannot be written (a read-only root filesystem?); programs that look the group up will fail"
  fi
fi
@nixNote@
exec "$@"
