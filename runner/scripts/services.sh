#!/usr/bin/env bash
# Make a Docker engine and Redis answer on this machine, installing them from Debian's packages
# when they are missing and we are root on Debian. Idempotent: whatever already answers is left
# alone. gVisor's runsc is installed and registered with dockerd when possible (optional).
# `services.sh browser` installs Debian's Chromium for the browser tests (`make browser`).
#
# Environment: C2D_REDIS_PORT (default 6379), C2D_SERVICES_LOG (default /var/log/c2d),
# C2D_NO_RUNSC=1 to skip gVisor.
set -euo pipefail

redis_port="${C2D_REDIS_PORT:-6379}"
logdir="${C2D_SERVICES_LOG:-/var/log/c2d}"

say() { printf 'services: %s\n' "$*" >&2; }
die() { printf 'services: error: %s\n' "$*" >&2; exit 1; }

can_install() { [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null; }

apt_updated=0
apt_install() {
  can_install || die "$1 is missing. Install $2 (or start an existing one) and run this again; \
automatic install needs Debian and root."
  if [ "$apt_updated" = 0 ]; then
    say "apt-get update"
    apt-get update -qq >/dev/null
    apt_updated=1
  fi
  say "installing $2 from Debian's packages"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${@:2}" >/dev/null
}

wait_for() { # wait_for SECONDS WHAT COMMAND...
  local limit=$1 what=$2; shift 2
  local i=0
  until "$@" >/dev/null 2>&1; do
    i=$((i + 1))
    [ "$i" -ge $((limit * 5)) ] && return 1
    [ $((i % 25)) = 0 ] && say "still waiting for $what ($((i / 5)) s)"
    sleep 0.2
  done
}

docker_up() { docker info >/dev/null 2>&1; }

register_runsc() {
  # Adds the runsc runtime to daemon.json without dropping other settings. Returns 0 when the
  # file changed (dockerd must then be (re)started to see it).
  python3 - <<'PY'
import json, pathlib, sys
p = pathlib.Path("/etc/docker/daemon.json")
cfg = json.loads(p.read_text()) if p.exists() and p.read_text().strip() else {}
want = {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none"]}
if cfg.get("runtimes", {}).get("runsc") == want:
    sys.exit(1)
cfg.setdefault("runtimes", {})["runsc"] = want
p.parent.mkdir(parents=True, exist_ok=True)
p.write_text(json.dumps(cfg, indent=2) + "\n")
PY
}

start_dockerd() {
  mkdir -p "$logdir"
  # A dockerd killed at the end of an earlier session leaves its pid files behind, and a new
  # dockerd refuses to start while they exist.
  if ! pgrep -x dockerd >/dev/null; then
    rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid
  fi
  say "starting dockerd (log: $logdir/dockerd.log)"
  # --iptables=false: these machines have no usable iptables; job containers use no network.
  nohup dockerd --iptables=false >>"$logdir/dockerd.log" 2>&1 &
  wait_for 60 "the Docker engine" docker info || die "dockerd did not answer within 60 s; see $logdir/dockerd.log"
}

ensure_docker() {
  if ! command -v dockerd >/dev/null && ! docker_up; then
    apt_install "the Docker engine" docker.io
  fi
  if ! command -v docker >/dev/null; then
    apt_install "the docker client" docker.io
  fi
  local changed=1
  if [ "${C2D_NO_RUNSC:-0}" != 1 ] && can_install; then
    if ! command -v runsc >/dev/null; then
      apt_install "gVisor (optional)" runsc || say "runsc not installed; jobs use runc only"
    fi
    if command -v runsc >/dev/null && register_runsc; then changed=0; fi
  fi
  if docker_up; then
    if [ "$changed" = 0 ] && pgrep -x dockerd >/dev/null; then
      say "restarting dockerd to register runsc"
      pkill -x dockerd || true
      wait_for 30 "dockerd to stop" bash -c '! pgrep -x dockerd' || die "dockerd did not stop"
      start_dockerd
    else
      say "Docker engine answers"
    fi
  elif command -v dockerd >/dev/null && [ "$(id -u)" = 0 ]; then
    start_dockerd
  else
    die "no Docker engine answers. Start one (e.g. 'systemctl start docker') and run this again."
  fi
  if docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q runsc; then
    say "runtimes: runc, runsc"
  else
    say "runtimes: runc"
  fi
}

redis_up() { redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG; }

ensure_redis() {
  if command -v redis-cli >/dev/null && redis_up; then
    say "Redis answers on port $redis_port"
    return
  fi
  command -v redis-server >/dev/null || apt_install "Redis" redis-server
  mkdir -p "$logdir"
  say "starting redis-server on 127.0.0.1:$redis_port"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$redis_port" \
    --logfile "$logdir/redis.log" --dir "$logdir" --save '' --appendonly no
  wait_for 20 "Redis" redis_up || die "Redis did not answer within 20 s; see $logdir/redis.log"
}

ensure_image_tools() {
  # mmdebstrap bootstraps the job image's base without any container registry.
  command -v mmdebstrap >/dev/null && return
  can_install || { say "mmdebstrap missing: 'make image' will need a registry base (see README)"; return; }
  apt_install "mmdebstrap" mmdebstrap
}

chromium_path() { command -v chromium || command -v chromium-browser; }

ensure_browser() {
  # Debian's Chromium for the browser tests (tests/e2e/test_web_review.py), which Playwright
  # drives through its executable: Playwright's own browser download cannot be fetched here.
  if chromium_path >/dev/null; then
    say "browser: $("$(chromium_path)" --version 2>/dev/null || echo chromium)"
    return
  fi
  apt_install "Chromium (for the browser tests)" chromium fonts-dejavu-core
  chromium_path >/dev/null || die "chromium did not install; the browser tests need it"
}

case "${1:-all}" in
  docker) ensure_docker ;;
  redis) ensure_redis ;;
  browser) ensure_browser ;;
  all) ensure_docker; ensure_redis; ensure_image_tools ;;
  *) die "usage: services.sh [all|docker|redis|browser]" ;;
esac

# --- docker-compose (appended for docker-compose.yml and tests/e2e/test_compose.py) ----------
# Debian's docker-compose 1.29 (Python); the compose v2 plugin is not packaged for bookworm.
# Optional for c2d itself: a machine that cannot install it only loses the compose deployment.
ensure_compose() {
  if command -v docker-compose >/dev/null; then
    say "docker-compose: $(docker-compose version --short 2>/dev/null || echo present)"
    return
  fi
  can_install || { say "docker-compose missing: install it to use docker-compose.yml"; return; }
  apt_install "docker-compose" docker-compose
}

case "${1:-all}" in
  all) ensure_compose ;;
esac
