#!/usr/bin/env bash
# Prepare this machine for docker-compose.yml, hand its data hosts their enrollment tokens, or
# undo the mounts. Needs root.
#
#   compose_host.sh prepare         make C2D_STATE_DIR (0700), the control plane's; write a
#                                   random Redis password to C2D_STATE_DIR/redis.env (0600)
#                                   unless it is there; make each data host's state folder
#                                   (0700) and datasets folder, and its state folder a shared
#                                   mount unless the mount holding it is shared already
#                                   (systemd hosts). Idempotent; run it again after a reboot.
#   compose_host.sh enroll SERVICE  read a data host's one-time enrollment token (from
#                                   `c2d host add NAME`) on stdin and leave it, mode 0600, in
#                                   the state folder of SERVICE (host-a or host-b), whose entry
#                                   point enrolls with it and deletes it. Stdin, never an
#                                   argument: `ps` and shell history would show an argument.
#   compose_host.sh release         after `docker-compose down`: unmount job filesystems left
#                                   under the data hosts' state folders and the shared binds
#                                   `prepare` made. Files stay.
#
# Why shared: a data host loop-mounts each job's /outputs under its state folder inside its
# container, and the machine's engine, which binds that folder into the job container, must
# see the mount. The compose file binds each data host's state folder `rshared` for that, and
# Docker accepts that only on a shared mount. The control plane mounts nothing: its folder
# stays as it is.
#
# Environment, the same variables docker-compose.yml reads: C2D_STATE_DIR (default
# /var/lib/c2d); C2D_HOST_A_STATE_DIR and C2D_HOST_B_STATE_DIR (default /var/lib/c2d-host-a,
# /var/lib/c2d-host-b); C2D_HOST_A_DATASETS_DIR and C2D_HOST_B_DATASETS_DIR (default
# /srv/c2d/host-a, /srv/c2d/host-b).
set -euo pipefail

state="${C2D_STATE_DIR:-/var/lib/c2d}"
# The data host services of docker-compose.yml.
hosts=(host-a host-b)
# Records that `prepare` made a bind, so `release` never unmounts a filesystem it did not
# mount. /run is emptied at boot, as the binds are.
marker_dir=/run/c2d-compose

say() { printf 'compose-host: %s\n' "$*" >&2; }
die() { printf 'compose-host: error: %s\n' "$*" >&2; exit 1; }

marker() { printf '%s/%s.bind' "$marker_dir" "$(printf '%s' "$1" | sha256sum | cut -c1-16)"; }

host_var() { # host_var SERVICE KIND: the variable naming SERVICE's KIND folder (STATE, DATASETS)
  local upper
  upper="$(printf '%s' "$1" | tr 'a-z-' 'A-Z_')"
  printf 'C2D_%s_%s_DIR' "$upper" "$2"
}

host_state() { # host_state SERVICE: that data host's state folder
  local var
  var="$(host_var "$1" STATE)"
  printf '%s' "${!var:-/var/lib/c2d-$1}"
}

host_datasets() { # host_datasets SERVICE: that data host's datasets folder
  local var
  var="$(host_var "$1" DATASETS)"
  printf '%s' "${!var:-/srv/c2d/$1}"
}

known_host() {
  local h
  for h in "${hosts[@]}"; do [ "$h" = "$1" ] && return 0; done
  return 1
}

# docker-compose.yml reads this file as every service's environment: the password for
# redis-server (as configuration on its stdin), for redis-cli, and inside C2D_REDIS_URL.
redis_env() {
  local file="$1/redis.env" password
  if [ ! -s "$file" ]; then
    password="$(od -An -vtx1 -N32 /dev/urandom | tr -d ' \n')"
    [ "${#password}" = 64 ] || die "could not read 32 random bytes for the Redis password"
    (
      umask 077
      printf 'C2D_REDIS_PASSWORD=%s\nREDISCLI_AUTH=%s\nC2D_REDIS_URL=redis://:%s@redis:6379/0\n' \
        "$password" "$password" "$password" >"$file.tmp"
      mv -f "$file.tmp" "$file"
    )
    say "wrote a new Redis password to $file (mode 0600)"
  fi
  chown root:root "$file"
  chmod 0600 "$file"
}

make_private() { # make_private FOLDER: create it, mode 0700; print its real path
  mkdir -p "$1"
  chmod 0700 "$1"
  realpath "$1"
}

share() { # share FOLDER: make FOLDER's mount shared, binding it onto itself if need be
  if findmnt -n -o PROPAGATION --target "$1" | grep -q shared; then
    say "$1 is on a shared mount"
    return
  fi
  if ! mountpoint -q "$1"; then
    mount --bind "$1" "$1"
    mkdir -p "$marker_dir"
    printf '%s\n' "$1" >"$(marker "$1")"
  fi
  mount --make-shared "$1"
  say "$1 is now a shared mount (bound onto itself)"
}

check_path() { # check_path NAME VALUE
  case "$2" in *' '*) die "$1: folder names with spaces are not supported" ;; esac
  [ "${2#/}" != "$2" ] || die "$1 must be an absolute path, not $2"
}

prepare() {
  [ "$(id -u)" = 0 ] || die "run as root: it makes folders under / and mounts"
  local h host_dir datasets all=("$state")
  check_path C2D_STATE_DIR "$state"
  for h in "${hosts[@]}"; do
    check_path "$(host_var "$h" STATE)" "$(host_state "$h")"
    check_path "$(host_var "$h" DATASETS)" "$(host_datasets "$h")"
    all+=("$(host_state "$h")")
  done
  # Each state folder is its owner's alone: none may hold another (a data host's state folder
  # inside the control plane's would put its job mounts under the API's bind).
  local a b
  for a in "${all[@]}"; do
    for b in "${all[@]}"; do
      [ "$a" = "$b" ] || [ "${b#"${a%/}"/}" = "$b" ] \
        || die "state folders must not nest: $b is inside $a"
    done
  done
  state="$(make_private "$state")"
  redis_env "$state"
  say "control plane: state folder $state"
  for h in "${hosts[@]}"; do
    host_dir="$(make_private "$(host_state "$h")")"
    datasets="$(host_datasets "$h")"
    mkdir -p "$datasets"
    share "$host_dir"
    say "data host $h: state folder $host_dir, datasets folder $datasets"
  done
  say "ready for docker-compose up"
}

enroll() {
  [ "$(id -u)" = 0 ] || die "run as root: the data host's state folder is root's alone"
  local service="${1:-}" dir file token=""
  known_host "$service" || die "usage: compose_host.sh enroll SERVICE (one of: ${hosts[*]}) \
< token-file"
  dir="$(host_state "$service")"
  [ -d "$dir" ] || die "$dir does not exist: run \`compose_host.sh prepare\` first"
  file="$dir/enroll-token"
  [ -t 0 ] && say "paste the enrollment token from \`c2d host add NAME\`, then Enter:"
  IFS= read -r token || true
  token="${token//[[:space:]]/}"
  [ -n "$token" ] || die "no enrollment token on stdin (\`c2d host add NAME | sudo $0 enroll \
$service\`)"
  (
    umask 077
    printf '%s\n' "$token" >"$file.tmp"
    mv -f "$file.tmp" "$file"
  )
  say "left the enrollment token for $service in $file (mode 0600); its container enrolls with \
it within seconds and deletes it (\`docker-compose logs $service\` tells)"
}

release_one() { # release_one FOLDER: unmount what is mounted under it, then its own bind
  local dir="$1" target
  [ -d "$dir" ] || { say "$dir does not exist; nothing to do"; return; }
  dir="$(realpath "$dir")"
  # Deepest first: job filesystems (work/JOB/outputs) left by an agent stopped mid-job.
  while read -r target; do
    [ -n "$target" ] || continue
    say "unmounting $target"
    umount "$target" || umount -l "$target"
  done < <(awk -v root="$dir/" 'index($5, root) == 1 { print $5 }' /proc/self/mountinfo \
    | sort -r)
  if [ -f "$(marker "$dir")" ] && mountpoint -q "$dir"; then
    umount "$dir"
    rm -f "$(marker "$dir")"
    say "removed the shared bind of $dir"
  fi
}

release() {
  [ "$(id -u)" = 0 ] || die "run as root"
  local h
  for h in "${hosts[@]}"; do
    release_one "$(host_state "$h")"
  done
  # An older compose file made the control plane's folder shared too: undo that bind as well.
  release_one "$state"
}

case "${1:-}" in
  prepare) prepare ;;
  enroll) enroll "${2:-}" ;;
  release) release ;;
  *) die "usage: compose_host.sh prepare|enroll SERVICE|release" ;;
esac
