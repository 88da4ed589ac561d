#!/usr/bin/env bash
# Prepare this host for docker-compose.yml, or undo that. Needs root.
#
#   compose_host.sh prepare   make C2D_STATE_DIR (0700) and C2D_DATASETS_DIR; write a random
#                             Redis password to C2D_STATE_DIR/redis.env (0600) unless it is
#                             there; make the state folder a shared mount unless the mount
#                             holding it is shared already (systemd hosts). Idempotent; run it
#                             again after a reboot.
#   compose_host.sh release   after `docker-compose down`: unmount job filesystems left under
#                             the state folder and the shared bind `prepare` made. Files stay.
#
# Why shared: the worker loop-mounts each job's /outputs under the state folder inside its
# container, and the host's engine, which binds that folder into the job container, must see
# the mount. The compose file binds the state folder `rshared` into the worker for that, and
# Docker accepts that only on a shared mount.
#
# Environment: C2D_STATE_DIR (default /var/lib/c2d), C2D_DATASETS_DIR (default
# /srv/c2d/datasets), the same variables docker-compose.yml reads.
set -euo pipefail

state="${C2D_STATE_DIR:-/var/lib/c2d}"
datasets="${C2D_DATASETS_DIR:-/srv/c2d/datasets}"
# Records that `prepare` made the bind, so `release` never unmounts a filesystem it did not
# mount. /run is emptied at boot, as the bind is.
marker_dir=/run/c2d-compose

say() { printf 'compose-host: %s\n' "$*" >&2; }
die() { printf 'compose-host: error: %s\n' "$*" >&2; exit 1; }

marker() { printf '%s/%s.bind' "$marker_dir" "$(printf '%s' "$1" | sha256sum | cut -c1-16)"; }

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

prepare() {
  [ "$(id -u)" = 0 ] || die "run as root: it makes folders under / and mounts"
  case "$state$datasets" in *' '*) die "folder names with spaces are not supported" ;; esac
  [ "${state#/}" != "$state" ] && [ "${datasets#/}" != "$datasets" ] \
    || die "C2D_STATE_DIR and C2D_DATASETS_DIR must be absolute paths"
  mkdir -p "$state" "$datasets"
  chmod 0700 "$state"
  state="$(realpath "$state")"
  redis_env "$state"
  if findmnt -n -o PROPAGATION --target "$state" | grep -q shared; then
    say "$state is on a shared mount"
  else
    if ! mountpoint -q "$state"; then
      mount --bind "$state" "$state"
      mkdir -p "$marker_dir"
      printf '%s\n' "$state" >"$(marker "$state")"
    fi
    mount --make-shared "$state"
    say "$state is now a shared mount (bound onto itself)"
  fi
  say "state folder $state, datasets root $datasets: ready for docker-compose up"
}

release() {
  [ "$(id -u)" = 0 ] || die "run as root"
  [ -d "$state" ] || { say "$state does not exist; nothing to do"; return; }
  state="$(realpath "$state")"
  local target
  # Deepest first: job filesystems (work/JOB/outputs) left by a worker stopped mid-job.
  while read -r target; do
    [ -n "$target" ] || continue
    say "unmounting $target"
    umount "$target" || umount -l "$target"
  done < <(awk -v root="$state/" 'index($5, root) == 1 { print $5 }' /proc/self/mountinfo \
    | sort -r)
  if [ -f "$(marker "$state")" ] && mountpoint -q "$state"; then
    umount "$state"
    rm -f "$(marker "$state")"
    say "removed the shared bind of $state"
  fi
}

case "${1:-}" in
  prepare) prepare ;;
  release) release ;;
  *) die "usage: compose_host.sh prepare|release" ;;
esac
