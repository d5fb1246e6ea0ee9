#!/usr/bin/env bash
# Installs what the project needs and the machine lacks: Java 17, Maven, PostgreSQL, npm and
# Chromium from Debian's packages (as root), uv from PyPI. Used by `make up`, `make test` and CI.
set -euo pipefail

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
command -v npm >/dev/null 2>&1 || missing+=(npm)
# The web app's browser tests drive Debian's Chromium (never a browser a tool downloads).
command -v chromium >/dev/null 2>&1 || [ -n "${KP_CHROMIUM:-}" ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} ..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "ERROR: missing ${missing[*]}. Install them (e.g. sudo apt-get install ${missing[*]})," >&2
    echo "       or use Docker: docker compose up --build" >&2
    exit 1
  fi
fi

if ! python3 -m uv --version >/dev/null 2>&1; then
  echo "installing uv from PyPI ..."
  python3 -m pip install --quiet uv 2>/dev/null \
    || python3 -m pip install --quiet --user uv 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages uv
fi
