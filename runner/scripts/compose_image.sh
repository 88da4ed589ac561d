#!/usr/bin/env bash
# Build c2d's app image (the API, data hosts and Redis of docker-compose.yml) from the top-level
# Dockerfile without a container registry, skipping what is up to date. Used by
# `make compose-image` and by tests/e2e/test_compose.py.
#
#   runner/scripts/compose_image.sh                       # local base, made with mmdebstrap
#   C2D_APP_BASE=python:3.11-slim-bookworm runner/scripts/compose_image.sh   # a registry base
#
# 1. Base: without C2D_APP_BASE, bootstrap c2d/app-base:bookworm from Debian packages unless an
#    image of the same package list has that tag (label org.c2d.recipe).
# 2. Recipe: the digest of the Dockerfile, the base, the versions installed in the venv and
#    every file of c2d's source. An image labelled with it already exists: tag it, done.
# 3. Context (build/compose/context): wheels of every dependency at the venv's versions (made
#    again only when those versions or pyproject.toml change) and of c2d itself, made with pip
#    on the host because builds have no network; the entry point.
# 4. docker build with the classic builder (it uses a local base as it is, never pulling it).
#
# Environment: C2D_APP_BASE, C2D_APP_IMAGE (default c2d/app:latest), C2D_PYTHON (default
# .venv/bin/python), C2D_APP_FORCE=1 to rebuild. Progress on stderr; stdout: the image ID.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python="${C2D_PYTHON:-$repo/.venv/bin/python}"
base="${C2D_APP_BASE:-}"
image="${C2D_APP_IMAGE:-c2d/app:latest}"
out="$repo/build/compose"
local_base="c2d/app-base:bookworm"
base_packages=(python3 python3-venv redis-server e2fsprogs mount tzdata)
label=org.c2d.recipe
started=$SECONDS

say() { printf 'compose-image: %s\n' "$*" >&2; }
die() { printf 'compose-image: error: %s\n' "$*" >&2; exit 1; }
indent() { sed -u 's/^/  /' >&2; }
digest() { printf 'sha256:%s' "$(sha256sum | cut -d' ' -f1)"; }
labelled() { # labelled ROLE RECIPE: the ID of a final image of that role and recipe, if any
  docker images --quiet --no-trunc --filter "label=org.c2d.role=$1" --filter "label=$label=$2" \
    | head -n 1
}

bootstrap_base() {
  local recipe found tmp
  recipe="$(printf '%s\n' mmdebstrap bookworm "${base_packages[@]}" | digest)"
  # Only the tag is trusted here: images built on the base inherit its labels, so a search by
  # label could find one of them (a failed build's leftover, say) and tag it as the base.
  if [ "$(docker image inspect --format "{{index .Config.Labels \"$label\"}}" "$local_base" \
    2>/dev/null)" = "$recipe" ]; then
    say "base $local_base is present"
    return
  fi
  command -v mmdebstrap >/dev/null || die "no base image and no mmdebstrap to make one: \
install mmdebstrap (apt-get install mmdebstrap), or set C2D_APP_BASE to a registry image"
  say "bootstrapping $local_base from Debian packages: ${base_packages[*]} (about a minute)"
  tmp="$(mktemp -d /tmp/c2d-app-base.XXXXXX)"
  # shellcheck disable=SC2064 # expand now: the folder is local to this function
  trap "rm -rf '$tmp'" EXIT
  local IFS=,
  mmdebstrap --variant=apt --include="${base_packages[*]}" \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    bookworm "$tmp/base.tar" </dev/null 2>&1 | indent
  unset IFS
  say "importing it as $local_base"
  docker import --change "LABEL $label=$recipe" --change "LABEL org.c2d.role=app-base" \
    "$tmp/base.tar" "$local_base" >/dev/null
  rm -rf "$tmp"
  trap - EXIT
}

source_files() { # every file that goes into c2d's wheel, sorted, relative to the repository
  (cd "$repo" && {
    find runner jobs ledger -type f ! -path '*/__pycache__/*' ! -name '*.pyc'
    printf '%s\n' pyproject.toml README.md
  } | LC_ALL=C sort)
}

source_digest() {
  (cd "$repo" && source_files | tr '\n' '\0' | xargs -0 sha256sum) | digest
}

python_version() { "$1" -c 'import platform; print(platform.python_version())'; }

resolver_for() { # resolver_for IMAGE: a Python on this host of the image's exact version
  # Dependencies carry markers such as `python_full_version < "3.11.3"` (redis needs
  # async-timeout below 3.11.3): pip evaluates them with the interpreter it runs for, so it
  # must be the image's version (Debian's python3 here, the same package as in the base).
  local want p
  want="$(docker run --rm --network none --entrypoint python3 "$1" \
    -c 'import platform; print(platform.python_version())')"
  for p in "$python" /usr/bin/python3; do
    if [ -x "$p" ] && [ "$(python_version "$p")" = "$want" ]; then
      echo "$p"
      return
    fi
  done
  say "warning: no Python $want on this host; resolving for $(python_version "$python")"
  echo "$python"
}

fill_context() { # fill_context FREEZE_FILE RESOLVER
  local ctx="$out/context" src="$out/src" deps_stamp
  mkdir -p "$ctx/wheels"
  # pip builds c2d from a clean copy: an in-tree build/ left by an older build could put
  # deleted modules back into the wheel.
  rm -rf "$src" && mkdir -p "$src"
  (cd "$repo" && source_files | tar -cf - -T -) | tar -C "$src" -xf -
  deps_stamp="$({ cat "$1" "$repo/pyproject.toml"; python_version "$2"; } | digest)"
  if [ "$(cat "$ctx/wheels/deps.stamp" 2>/dev/null)" != "$deps_stamp" ]; then
    say "fetching wheels of c2d's dependencies at the venv's versions for Python \
$(python_version "$2") (pip, on the host)"
    rm -rf "$ctx/wheels/deps" "$ctx/wheels/deps.tmp"
    "$python" -m pip --python "$2" wheel -qq --disable-pip-version-check --prefer-binary \
      --constraint "$1" --wheel-dir "$ctx/wheels/deps.tmp" "$src" 2>&1 | indent
    rm -f "$ctx/wheels/deps.tmp"/c2d-*.whl
    mv "$ctx/wheels/deps.tmp" "$ctx/wheels/deps"
    printf '%s' "$deps_stamp" >"$ctx/wheels/deps.stamp"
  else
    say "dependency wheels are up to date ($(find "$ctx/wheels/deps" -name '*.whl' | wc -l) wheels)"
  fi
  say "building c2d's wheel"
  rm -rf "$ctx/wheels/app"
  "$python" -m pip wheel -qq --disable-pip-version-check --no-deps \
    --wheel-dir "$ctx/wheels/app" "$src" 2>&1 | indent
  cp "$repo/runner/scripts/compose_entrypoint.sh" "$ctx/"
  rm -rf "$ctx/dockerfiles" && cp -r "$src/runner/host/images/dockerfiles" "$ctx/dockerfiles"
}

main() {
  command -v docker >/dev/null && docker info >/dev/null 2>&1 \
    || die "no Docker engine answers; run \`make services\`"
  [ -x "$python" ] || die "$python is missing; run \`make dev\` (or set C2D_PYTHON)"
  local base_ref base_id freeze recipe found image_id
  if [ -z "$base" ]; then
    bootstrap_base
    base_ref="$local_base"
  else
    base_ref="$base"
  fi
  base_id="$(docker image inspect --format '{{.Id}}' "$base_ref" 2>/dev/null || echo "$base_ref")"
  mkdir -p "$out"
  freeze="$out/constraints.txt"
  "$python" -m pip freeze --exclude-editable --disable-pip-version-check >"$freeze.tmp"
  mv "$freeze.tmp" "$freeze"
  recipe="$({
    cat "$repo/Dockerfile"
    printf 'base %s %s\n' "$base_ref" "$base_id"
    cat "$freeze"
    source_digest
  } | digest)"
  found="$(labelled app "$recipe")"
  if [ -n "$found" ] && [ "${C2D_APP_FORCE:-0}" != 1 ]; then
    docker tag "$found" "$image"
    say "$image is up to date (${recipe:0:19})"
    echo "$found"
    return
  fi
  fill_context "$freeze" "$(resolver_for "$base_ref")"
  say "building $image from $base_ref"
  # --force-rm: a failed step leaves no stopped container behind. From the local base the
  # build needs no network at all, so it gets none (and does not depend on the engine's
  # default bridge); a registry base may need apt (see the Dockerfile).
  local network=default
  [ -n "$base" ] || network=none
  DOCKER_BUILDKIT=0 docker build --force-rm --network "$network" --build-arg "BASE=$base_ref" \
    --label "$label=$recipe" --label org.c2d.role=app \
    --tag "$image" --file "$repo/Dockerfile" "$out/context" 2>&1 \
    | grep -v -e '^DEPRECATED' -e 'BuildKit is currently disabled' -e 'buildx component' \
      -e 'Install the buildx' -e 'docs.docker.com/go/buildx' -e '^ *$' | indent || true
  image_id="$(labelled app "$recipe")"
  [ -n "$image_id" ] || die "building $image failed (see the lines above)"
  # Earlier app images the tag moved away from: removed unless a container still uses one.
  docker images --quiet --filter dangling=true --filter label=org.c2d.role=app \
    | xargs -r docker rmi >/dev/null 2>&1 || true
  say "built $image ${image_id:0:19} in $((SECONDS - started)) s"
  echo "$image_id"
}

main "$@"
