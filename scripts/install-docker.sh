#!/usr/bin/env bash
# Makes Docker usable for integration/cluster-compose.test.ts on a Debian machine that cannot pull images:
#   1. installs docker.io and docker-compose (v1) from Debian when they are missing (root only);
#   2. starts dockerd in the background (log: $DOCKERD_LOG) unless an engine already answers, and waits for it;
#   3. when `docker compose` (v2) is missing, installs a CLI plugin shim that forwards to docker-compose v1, in
#      ${DOCKER_CONFIG:-~/.docker}/cli-plugins (testcontainers runs `docker compose ...`);
#   4. builds the local base image (scripts/docker-base-image.sh) unless it exists.
# Exit status: 0 when `docker info` and `docker compose version` work and the base image exists; otherwise 1 with
# the reason on stderr. CI calls it and goes on either way: the compose test then fails and says "Docker
# unavailable" with the reason, it never skips silently.
set -uo pipefail
cd "$(dirname "$0")/.."

DOCKERD_LOG=${DOCKERD_LOG:-/var/log/takhin-dockerd.log}
# How long dockerd may take to answer after start (s).
DOCKERD_START_TIMEOUT_S=${DOCKERD_START_TIMEOUT_S:-60}
BASE_IMAGE=${BASE_IMAGE:-takhin-node-base:local}

say() { echo "install-docker: $*" >&2; }
fail() { say "$*"; exit 1; }

install_packages() {
  local need=()
  command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
  command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || need+=(docker-compose)
  [ ${#need[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    fail "missing ${need[*]}; install them (apt-get install ${need[*]}) as root"
  fi
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || fail "apt-get install ${need[*]} failed"
}

start_engine() {
  docker info >/dev/null 2>&1 && return 0
  [ "$(id -u)" = 0 ] || fail "the Docker engine does not answer and only root can start dockerd"
  command -v dockerd >/dev/null 2>&1 || fail "dockerd is not installed"
  say "starting dockerd (log: $DOCKERD_LOG)"
  # setsid + nohup: the engine outlives this script and the CI step that ran it.
  setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
  local deadline=$((SECONDS + DOCKERD_START_TIMEOUT_S))
  until docker info >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      tail -n 20 "$DOCKERD_LOG" >&2
      fail "dockerd did not answer within ${DOCKERD_START_TIMEOUT_S} s (log: $DOCKERD_LOG)"
    fi
    sleep 0.5
  done
}

install_compose_shim() {
  docker compose version >/dev/null 2>&1 && return 0
  local v1
  v1=$(command -v docker-compose) || fail "neither docker compose (v2) nor docker-compose (v1) is installed"
  local dir="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
  mkdir -p "$dir" || fail "cannot create $dir"
  # The CLI plugin protocol: answer the metadata probe; otherwise the CLI calls us as `<plugin> compose ARGS`.
  cat >"$dir/docker-compose" <<EOF
#!/bin/sh
# Written by takhin-ts scripts/install-docker.sh: forwards \`docker compose\` to docker-compose v1 ($v1).
if [ "\$1" = docker-cli-plugin-metadata ]; then
  echo '{"SchemaVersion":"0.1.0","Vendor":"takhin-ts shim","Version":"v1-shim","ShortDescription":"docker-compose v1"}'
  exit 0
fi
[ "\$1" = compose ] && shift
exec "$v1" "\$@"
EOF
  chmod +x "$dir/docker-compose"
  docker compose version >/dev/null 2>&1 || fail "the docker compose shim in $dir does not work"
  say "installed the docker compose shim in $dir"
}

build_base_image() {
  docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return 0
  bash scripts/docker-base-image.sh "$BASE_IMAGE" || fail "could not build the base image $BASE_IMAGE"
}

install_packages
start_engine
install_compose_shim
build_base_image
say "ready: $(docker version --format 'engine {{.Server.Version}}' 2>/dev/null), $(docker compose version 2>/dev/null | head -n 1)"
