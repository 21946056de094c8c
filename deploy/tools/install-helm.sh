#!/usr/bin/env bash
# Installs the pinned Helm into .cache/tools/bin/helm, built from its Go module
# (helm.sh/helm/v3) through the Go module proxy: no prebuilt download needed.
# Idempotent: returns at once when the pinned version is already there.
#
#   deploy/tools/install-helm.sh            install (if needed) and print the binary's path
#   HELM_VERSION=v3.19.0 deploy/tools/...   another pinned version
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
version="${HELM_VERSION:-v3.19.0}"
# The Kubernetes version `helm template` assumes without --kube-version: that of
# the client-go this Helm release is built with (Helm's own Makefile does the same).
kube_minor="${HELM_KUBE_MINOR:-34}"
bin_dir="$root/.cache/tools/bin"
helm="$bin_dir/helm"

say() { printf 'install-helm: %s\n' "$*" >&2; }

installed_version() { "$helm" version --template '{{.Version}}' 2>/dev/null || true; }

if [[ -x "$helm" && "$(installed_version)" == "$version" ]]; then
  echo "$helm"
  exit 0
fi

# Go may be installed without being on PATH (its usual place).
PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { say "Go is needed to build Helm (https://go.dev/dl)"; exit 1; }
say "building Helm $version with $(go version | cut -d' ' -f3) (takes a minute or two, once)"
mkdir -p "$bin_dir"
build_cache="$(mktemp -d "$root/.cache/go-build.XXXXXX")"
trap 'rm -rf "$build_cache"' EXIT
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$version"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$kube_minor"
done
GOBIN="$bin_dir" \
  GOMODCACHE="$root/.cache/go/mod" \
  GOCACHE="$build_cache" \
  GOFLAGS="-trimpath -modcacherw" \
  CGO_ENABLED=0 \
  go install -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$version"

if [[ "$(installed_version)" != "$version" ]]; then
  say "built $helm but it reports '$(installed_version)', expected $version"
  exit 1
fi
say "installed $("$helm" version --short)"
echo "$helm"
