#!/usr/bin/env bash
# The four service images (leadflow-marketing:local, -sales, -orders, -webhooks) from
# deploy/Dockerfile, and a Docker engine to build and run them with.
#
#   deploy/image.sh build   build the images and print their sizes (`make image`); an engine
#                           this script had to start for it is stopped again at the end
#   deploy/image.sh start   make sure an engine answers: installs Debian's docker.io if it is
#                           missing and starts dockerd if none answers; it keeps running
#   deploy/image.sh stop    stop the dockerd `start` started, once no holder is left
#   deploy/image.sh base    only the base image; prints its name
#
# Exit status 3: no engine (or no base image) can be had on this machine; the reason
# is on stderr. The container smoke test skips on it.
#
# The base image is the build argument PYTHON_IMAGE: $PYTHON_IMAGE if set, else the
# official python:3.11-slim-bookworm where a registry gives it, else a stand-in made
# here with debootstrap (Debian's python3 with a venv on PATH), cached in
# .cache/container/ and in the engine. Downloads in the build trust the machine's
# extra CA certificates (/usr/local/share/ca-certificates) through a build secret,
# which no layer keeps.
#
# `start` and `stop` count holders (LEADFLOW_ENGINE_HOLDER, a pid, default the
# caller's): a dockerd started here is stopped only when every holder is gone, so
# a test session does not stop the engine under another one's build.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
services=(marketing sales orders webhooks)
tag="${LEADFLOW_IMAGE_TAG:-local}"
official=python:3.11-slim-bookworm
cache="$root/.cache/container"
# dockerd is one per machine, so its state is too (not per clone).
state="${LEADFLOW_ENGINE_STATE:-/run/leadflow-engine}"
holder="${LEADFLOW_ENGINE_HOLDER:-$PPID}"
python_image=""

say() { printf 'image: %s\n' "$*" >&2; }
unavailable() {
  say "$*"
  exit 3
}

# Cleanups for the end of this run, whatever way it ends (last registered runs first).
on_exit=()
trap 'for ((i = ${#on_exit[@]} - 1; i >= 0; i--)); do eval "${on_exit[i]}"; done' EXIT

answers() { timeout 20 docker info >/dev/null 2>&1; }

can_install() { [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; }

apt_install() {
  can_install || unavailable "$1 is missing, and installing it needs root and apt-get"
  shift
  say "installing Debian's $* (apt-get)"
  if ! apt-cache show "$1" >/dev/null 2>&1; then apt-get update -qq >&2 || true; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 ||
    unavailable "apt-get could not install $*"
}

# A client that builds with BuildKit (RUN --mount needs it): Docker 23+ only
# through the buildx plugin, older clients (Debian 12's 20.10) by themselves.
builds_with_buildkit() {
  "$1" buildx version >/dev/null 2>&1 && return
  local major
  major="$("$1" version --format '{{.Client.Version}}' 2>/dev/null || true)"
  major="${major%%.*}"
  [[ "$major" =~ ^[0-9]+$ ]] && ((major < 23))
}

build_client() {
  local candidate
  for candidate in "$(command -v docker || true)" /usr/bin/docker; do
    if [[ -x "$candidate" ]] && builds_with_buildkit "$candidate"; then
      echo "$candidate"
      return
    fi
  done
  return 1
}

ensure_packages() {
  if command -v dockerd >/dev/null && build_client >/dev/null; then return; fi
  local packages=(docker.io)
  # Debian 13's docker.io (26) builds with BuildKit only through this plugin.
  if apt-cache show docker-buildx >/dev/null 2>&1; then packages+=(docker-buildx); fi
  apt_install "a Docker engine" "${packages[@]}"
}

# The dockerd this script started, if it still runs (a pid file outlives a killed
# dockerd, and its number may be another process's by now).
started_here() {
  local pid
  pid="$(cat "$state/dockerd.pid" 2>/dev/null)" && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == dockerd ]]
}

# A process's start time: with its pid, it names the process even once pids wrap.
# (Field 22 of /proc/PID/stat, counted after the command name, which may hold
# spaces; nothing for a zombie, which has ended.)
started_at() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '$1 != "Z" { print $20 }'; }

live_holders() {
  local file since
  for file in "$state"/holders/*; do
    [[ -e "$file" ]] || continue
    since="$(started_at "${file##*/}")"
    if [[ -n "$since" && "$since" == "$(cat "$file")" ]]; then echo "${file##*/}"; else rm -f "$file"; fi
  done
}

start() {
  # An engine that answers and that this script did not start is not ours to count.
  if answers && ! started_here; then return; fi
  ensure_packages
  can_install || unavailable "no Docker engine answers, and starting dockerd needs root"
  mkdir -p "$state/holders"
  (
    flock 9
    start_dockerd
  ) 9>"$state/lock"
}

start_dockerd() {
  started_at "$holder" >"$state/holders/$holder"
  if answers; then return; fi
  say "starting dockerd (log: $state/dockerd.log)"
  # Its own session, so a Ctrl-C meant for make does not stop it mid-build; and
  # without the lock's descriptor, which it would otherwise hold for good.
  setsid nohup dockerd >"$state/dockerd.log" 2>&1 </dev/null 9>&- &
  echo $! >"$state/dockerd.pid"
  local deadline=$((SECONDS + 60))
  until answers; do
    if ! kill -0 "$(cat "$state/dockerd.pid")" 2>/dev/null || ((SECONDS > deadline)); then
      rm -f "$state/dockerd.pid" "$state/holders/$holder"
      tail -n 20 "$state/dockerd.log" >&2 || true
      unavailable "dockerd did not start (see $state/dockerd.log)"
    fi
    sleep 0.5
  done
  say "dockerd answers ($(docker version --format '{{.Server.Version}}'))"
}

stop() {
  [[ -d "$state" ]] || return 0
  (
    flock 9
    stop_dockerd
  ) 9>"$state/lock"
}

stop_dockerd() {
  rm -f "$state/holders/$holder"
  if ! started_here; then
    rm -f "$state/dockerd.pid"
    return
  fi
  if [[ -n "$(live_holders)" ]]; then
    say "dockerd stays: still held by pid $(live_holders | paste -sd, -)"
    return
  fi
  local pid
  pid="$(cat "$state/dockerd.pid")"
  say "stopping the dockerd started here (pid $pid)"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "dockerd did not stop in 30 s; killing it"
    kill -9 "$pid" || true
  fi
  rm -f "$state/dockerd.pid"
}

# The stand-in for the official image: Debian 12's python3 (3.11, as the official
# image's) with a venv on PATH, because Debian's python3 refuses pip installs
# (PEP 668) and has no `python` command, both of which the Dockerfile uses.
make_base_rootfs() {
  local dir="$1"
  command -v debootstrap >/dev/null || apt_install debootstrap debootstrap
  say "making a Debian 12 base with debootstrap (about a minute, cached afterwards)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$dir" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$dir.log" 2>&1 ||
    {
      tail -n 20 "$dir.log" >&2
      unavailable "debootstrap failed (see $dir.log)"
    }
  chroot "$dir" /usr/bin/python3 -m venv /opt/python
  # What the slim image leaves out too, and what is the build machine's rather than the image's.
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/usr/share/man/* \
    "$dir"/usr/share/locale/* "$dir"/usr/share/info/* "$dir"/var/log/*.log "$dir"/var/cache/debconf/*-old
  find "$dir/usr/share/doc" -type f ! -name copyright -delete
  : >"$dir/etc/resolv.conf"
  : >"$dir/etc/hostname"
}

# Sets python_image (not printed: a $(...) subshell would lose on_exit).
find_base() {
  if [[ -n "${PYTHON_IMAGE:-}" ]]; then
    python_image="$PYTHON_IMAGE"
    return
  fi
  if docker image inspect "$official" >/dev/null 2>&1; then
    python_image="$official"
    return
  fi
  if timeout 300 docker pull "$official" >&2 2>/dev/null; then
    python_image="$official"
    return
  fi
  # Named after its recipe: a changed recipe makes a new base, never a stale one.
  local recipe
  recipe="$(declare -f make_base_rootfs | sha256sum | cut -c1-12)"
  local name="leadflow-python-base:3.11-bookworm-$recipe"
  if docker image inspect "$name" >/dev/null 2>&1; then
    python_image="$name"
    return
  fi
  say "no registry gives $official: using a local stand-in, $name"
  local tarball="$cache/python-base-$recipe.tar.gz"
  if [[ ! -f "$tarball" ]]; then
    [[ $(id -u) -eq 0 ]] || unavailable "no registry gives $official, and debootstrap needs root"
    mkdir -p "$cache"
    local dir
    dir="$(mktemp -d "$cache/rootfs.XXXXXX")"
    on_exit+=("rm -rf '$dir' '$dir.log' '$tarball.part'")
    make_base_rootfs "$dir"
    tar -C "$dir" --numeric-owner -cf - . | gzip -1 >"$tarball.part"
    rm -f "$cache"/python-base-*.tar.gz
    mv "$tarball.part" "$tarball"
  fi
  docker import \
    --change 'ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    "$tarball" "$name" >/dev/null
  python_image="$name"
}

base() {
  find_base
  echo "$python_image"
}

# The machine's CA bundle with its extra certificates, for the build's downloads only.
build_ca() {
  local extra=(/usr/local/share/ca-certificates/*.crt /usr/local/share/ca-certificates/*/*.crt)
  local found=()
  local file
  for file in "${extra[@]}"; do [[ -f "$file" ]] && found+=("$file"); done
  ((${#found[@]})) || return 0
  local bundle
  bundle="$(mktemp)"
  cat /etc/ssl/certs/ca-certificates.crt "${found[@]}" >"$bundle" 2>/dev/null || cat "${found[@]}" >"$bundle"
  echo "$bundle"
}

# For build and base: an engine for this run only, unless one ran already.
with_engine() {
  holder=$$
  on_exit+=(stop)
  start
  "$@"
}

build() {
  local client bundle
  if ! client="$(build_client)"; then
    ensure_packages
    client="$(build_client)" || unavailable "no Docker client here builds with BuildKit (it needs buildx)"
  fi
  find_base
  bundle="$(build_ca)"
  local secret=()
  if [[ -n "$bundle" ]]; then
    secret=(--secret "id=build-ca,src=$bundle")
    on_exit+=("rm -f '$bundle'")
  fi
  local service
  for service in "${services[@]}"; do
    say "building leadflow-$service:$tag on $python_image"
    local command=(build --progress=plain -f "$here/Dockerfile" --target "$service"
      --build-arg "PYTHON_IMAGE=$python_image" "${secret[@]}" -t "leadflow-$service:$tag" "$root")
    # Once, a first build on a new engine lost its BuildKit session ("rpc error:
    # unexpected EOF") and the same build then passed: one more try, from the cache.
    DOCKER_BUILDKIT=1 "$client" "${command[@]}" >&2 || {
      say "building leadflow-$service:$tag failed; once more"
      DOCKER_BUILDKIT=1 "$client" "${command[@]}" >&2
    }
  done
  for service in "${services[@]}"; do
    docker image inspect --format "leadflow-$service:$tag {{.Size}}" "leadflow-$service:$tag" |
      awk '{printf "%s %.0f MB\n", $1, $2 / 1e6}'
  done
}

case "${1:-}" in
  start | stop) "$1" ;;
  build | base) with_engine "$1" ;;
  *)
    sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
