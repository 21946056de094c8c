#!/usr/bin/env bash
# Installs Debian's `chromium` (the browser the funnel page's test drives with
# Playwright, as its executable: Playwright's own browser download is not used).
# Idempotent: returns at once when it is there.
#
#   deploy/tools/install-chromium.sh      install (if needed) and print the browser's path
set -euo pipefail

say() { printf 'install-chromium: %s\n' "$*" >&2; }

found() {
  local candidate
  for candidate in "${LEADFLOW_CHROMIUM:-}" /usr/bin/chromium "$(command -v chromium || true)"; do
    if [[ -n "$candidate" && -x "$candidate" ]] && "$candidate" --version >/dev/null 2>&1; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

if found; then exit 0; fi

command -v apt-get >/dev/null || { say "needs a Debian-based machine (apt-get), or LEADFLOW_CHROMIUM set"; exit 1; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
candidate() { apt-cache policy chromium 2>/dev/null | sed -n 's/^ *Candidate: *//p'; }
if [[ -z "$(candidate)" || "$(candidate)" == "(none)" ]]; then
  say "no package lists yet: apt-get update"
  as_root apt-get update -qq
fi
say "installing Debian's chromium $(candidate)"
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2
found || { say "chromium installed but does not start"; exit 1; }
