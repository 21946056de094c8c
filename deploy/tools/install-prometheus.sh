#!/usr/bin/env bash
# Installs Prometheus and promtool from Debian's `prometheus` package into
# .cache/tools/prometheus (unpacked there, not installed system-wide: no service,
# no user, no root needed once the package lists are present).
# Idempotent: returns at once when they are already there.
#
#   deploy/tools/install-prometheus.sh      install (if needed) and print the bin folder
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# Debian 12 (bookworm)'s build; another Debian release's is taken if this one is gone.
pinned="${PROMETHEUS_DEB_VERSION:-2.42.0+ds-5+deb12u1}"
home="$root/.cache/tools/prometheus"
bin="$home/usr/bin"

say() { printf 'install-prometheus: %s\n' "$*" >&2; }

if [[ -x "$bin/promtool" && -x "$bin/prometheus" ]] && "$bin/promtool" --version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi

command -v apt-get >/dev/null || { say "needs a Debian-based machine (apt-get)"; exit 1; }
candidate() { apt-cache policy prometheus 2>/dev/null | sed -n 's/^ *Candidate: *//p'; }
if [[ -z "$(candidate)" || "$(candidate)" == "(none)" ]]; then
  say "no package lists yet: apt-get update"
  if [[ $(id -u) -eq 0 ]]; then apt-get update -qq; else sudo apt-get update -qq; fi
fi
if apt-cache show "prometheus=$pinned" >/dev/null 2>&1; then
  version="$pinned"
else
  version="$(candidate)"
  say "Debian has no prometheus $pinned here; taking its $version"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work" # apt's sandbox user writes the download here
(cd "$work" && apt-get download -qq "prometheus=$version" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
deb="$(ls "$work"/prometheus_*.deb)"
rm -rf "$home.partial"
mkdir -p "$home.partial"
dpkg-deb -x "$deb" "$home.partial"
rm -rf "$home"
mv "$home.partial" "$home"
say "installed $("$bin/promtool" --version 2>&1 | head -1)"
echo "$bin"
