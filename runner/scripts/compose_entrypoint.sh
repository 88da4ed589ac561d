#!/usr/bin/env bash
# The app image's entry point for docker-compose.yml (installed as /usr/local/bin/c2d-compose).
#
#   c2d-compose init     make the installation in $C2D_HOME once; never touch an existing one
#   c2d-compose worker   the data host's worker, and the read-only engine proxy for the API
#   c2d-compose health   the worker's healthcheck (the engine answers through the proxy)
#   c2d-compose CMD...   anything else runs as given (c2d server, redis-server, a shell)
set -euo pipefail

proxy_socket="${C2D_ENGINE_PROXY:-/run/c2d-engine/docker.sock}"
proxy_script=/usr/local/lib/c2d/engine_proxy.py

say() { printf 'c2d-compose: %s\n' "$*" >&2; }

init_home() {
  local home="${C2D_HOME:?C2D_HOME must name the state folder}"
  if [ -e "$home/c2d.db" ] || [ -e "$home/ledger.key" ]; then
    say "$home already holds a c2d installation; left as it is"
    return 0
  fi
  local doc token file="$home/initial-admin-token"
  doc="$(c2d init --json)"
  token="$(printf '%s' "$doc" | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')"
  # The token is shown once: here, to the operator who can read the state folder (0700, root),
  # rather than in a container log that outlives it. The operator reads it, then deletes it.
  (umask 077 && printf '%s\n' "$token" >"$file.tmp" && mv -f "$file.tmp" "$file")
  say "created the installation in $home"
  say "the admin token is in $file: read it once (cat), then delete it (rm)"
}

make_loop_nodes() {
  # mount -o loop asks /dev/loop-control for a free loop device N, then opens /dev/loopN. The
  # container's /dev is a copy made at start, so nodes the kernel adds later are missing here:
  # make them (the compose file allows exactly these device numbers).
  local i count="${C2D_LOOP_DEVICES:-128}"
  [ -e /dev/loop-control ] || mknod -m 0600 /dev/loop-control c 10 237
  for ((i = 0; i < count; i++)); do
    [ -e "/dev/loop$i" ] || mknod -m 0600 "/dev/loop$i" b 7 "$i"
  done
}

run_worker() {
  make_loop_nodes
  python3 "$proxy_script" serve --listen "$proxy_socket" &
  local proxy=$! worker ended="" status=0 code=0 stopping=0
  c2d worker --concurrency "${C2D_WORKER_CONCURRENCY:-1}" &
  worker=$!
  # docker stop sends SIGTERM here: pass it on once; the worker hands its running jobs back
  # (their containers keep running and the next worker adopts them).
  trap 'stopping=1; kill -TERM "$worker" "$proxy" 2>/dev/null || true' TERM INT
  wait -n -p ended "$worker" "$proxy" || status=$?
  if [ "${ended:-}" = "$worker" ]; then
    say "the worker exited ($status)"
    kill -TERM "$proxy" 2>/dev/null || true
    wait "$proxy" 2>/dev/null || true
    exit "$status"
  fi
  # The proxy ended, or we were told to stop. The worker must not run on without the proxy:
  # the container would look alive while the API cannot submit.
  [ "$stopping" = 1 ] || { say "the engine proxy exited ($status); stopping the worker"; \
    kill -TERM "$worker" "$proxy" 2>/dev/null || true; }
  while :; do
    if wait "$worker"; then code=0; else code=$?; fi
    kill -0 "$worker" 2>/dev/null || break # a signal, not the worker's end, interrupted wait
  done
  wait "$proxy" 2>/dev/null || true
  exit "$code"
}

case "${1:-}" in
  init) init_home ;;
  worker) run_worker ;;
  health) exec python3 "$proxy_script" check --listen "$proxy_socket" ;;
  "") say "usage: c2d-compose init|worker|health|CMD..."; exit 2 ;;
  *) exec "$@" ;;
esac
