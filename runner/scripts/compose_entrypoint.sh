#!/usr/bin/env bash
# The app image's entry point for docker-compose.yml (installed as /usr/local/bin/c2d-compose).
#
#   c2d-compose init     make the control plane's installation in $C2D_HOME once (no data host
#                        of its own: `c2d init --no-local-host`); never touch an existing one
#   c2d-compose host     a data host whose state folder is $C2D_HOME: enroll it once with the
#                        API at $C2D_URL (the token comes as the file $C2D_HOME/enroll-token,
#                        left there by `compose_host.sh enroll`), then run `c2d host start`
#   c2d-compose health   a data host's healthcheck: enrolled, and its Docker engine answers
#   c2d-compose CMD...   anything else runs as given (c2d server, redis-server, a shell)
set -euo pipefail

say() { printf 'c2d-compose: %s\n' "$*" >&2; }

init_home() {
  local home="${C2D_HOME:?C2D_HOME must name the state folder}"
  if [ -e "$home/c2d.db" ] || [ -e "$home/ledger.key" ]; then
    say "$home already holds a c2d installation; left as it is"
    return 0
  fi
  local doc token file="$home/initial-admin-token"
  doc="$(c2d init --no-local-host --json)"
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

enroll_once() {
  # The admin adds the host (`c2d host add NAME`, which prints a one-time token) and pipes the
  # token to `compose_host.sh enroll SERVICE`, which leaves it in the host's state folder (root
  # only, mode 0600). It reaches `c2d host enroll` on its stdin, never in an argument (`ps`
  # would show it), and the file is deleted once used.
  local home="$1" url="${C2D_URL:?C2D_URL must name the API}" file="$1/enroll-token"
  local token code waited=0 note_at=0
  while [ ! -f "$home/host.json" ]; do
    if [ -s "$file" ]; then
      IFS= read -r token <"$file" || true
      if printf '%s\n' "$token" | c2d host enroll "$url" --home "$home" >/dev/null; then
        rm -f "$file"
        break
      else
        code=$?
      fi
      if [ "$code" = 5 ]; then
        # The API is not answering (yet): the token is still good; try again.
        say "the API at $url did not answer; trying the enrollment again"
      else
        say "the API refused the enrollment token (exit $code); deleting it. Ask the admin" \
          "for a new one (\`c2d host add NAME --renew\` if the host exists) and pipe it to" \
          "\`compose_host.sh enroll SERVICE\`"
        rm -f "$file"
        # Say at once that it waits again, for the next token.
        note_at=$waited
      fi
    fi
    if [ ! -s "$file" ] && ((waited >= note_at)); then
      say "not enrolled yet: waiting for the enrollment token in $file (on the machine: \`c2d" \
        "host add NAME | sudo runner/scripts/compose_host.sh enroll SERVICE\`)"
      note_at=$((waited + 60))
    fi
    sleep 2
    waited=$((waited + 2))
  done
  unset token
}

run_host() {
  local home="${C2D_HOME:?C2D_HOME must name the state folder of the data host}"
  mkdir -p "$home"
  chmod 0700 "$home"
  make_loop_nodes
  enroll_once "$home"
  local name
  name="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["name"])' \
    "$home/host.json")"
  say "data host $name (state in $home) is enrolled; starting its agent"
  # docker stop sends SIGTERM (through the compose file's init) to the agent, which hands its
  # running jobs back: their containers keep running and the next agent adopts them.
  exec c2d host start --home "$home" --concurrency "${C2D_WORKER_CONCURRENCY:-1}"
}

health() {
  local home="${C2D_HOME:?C2D_HOME must name the state folder of the data host}"
  [ -f "$home/host.json" ] || { say "not enrolled yet"; exit 1; }
  exec python3 -c 'import docker; docker.from_env(timeout=4).ping()'
}

case "${1:-}" in
  init) init_home ;;
  host) run_host ;;
  health) health ;;
  "") say "usage: c2d-compose init|host|health|CMD..."; exit 2 ;;
  *) exec "$@" ;;
esac
