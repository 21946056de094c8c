#!/usr/bin/env bash
# Installs the pinned Docker Compose into .cache/tools/bin/docker-compose, built
# from its Go module (github.com/docker/compose/v5) through the Go module proxy:
# no registry for a prebuilt one here, and Debian 12's docker-compose (1.29) cannot
# read compose.yaml. Idempotent: returns at once when the pinned version is there.
#
#   deploy/tools/install-compose.sh       install (if needed) and print the binary's path
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
version="${COMPOSE_VERSION:-v5.6.0}"
compose="$root/.cache/tools/bin/docker-compose"

say() { printf 'install-compose: %s\n' "$*" >&2; }

if [[ -x "$compose" && "$("$compose" version --short 2>/dev/null || true)" == "${version#v}" ]]; then
  echo "$compose"
  exit 0
fi

PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { say "Go is needed to build Docker Compose (https://go.dev/dl)"; exit 1; }
say "building Docker Compose $version with $(go version | cut -d' ' -f3) (a few minutes, once)"
mkdir -p "$(dirname "$compose")"
build_cache="$(mktemp -d "$root/.cache/go-build.XXXXXX")"
trap 'rm -rf "$build_cache"' EXIT
export GOMODCACHE="$root/.cache/go/mod" GOCACHE="$build_cache" GOFLAGS="-trimpath -modcacherw" CGO_ENABLED=0
# `go install module@version` refuses a go.mod with exclude directives, which
# Compose's has: build inside the downloaded module, with its own go.sum.
module="$(go mod download -json "github.com/docker/compose/v5@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
(cd "$module" && go build -ldflags "-s -w -X github.com/docker/compose/v5/internal.Version=$version" \
  -o "$compose" ./cmd)
say "installed $("$compose" version)"
echo "$compose"
