#!/usr/bin/env bash
# Installs, from the OS packages, what `make test` and `make run` need beyond
# Go and is missing: each argument names a need, checked first, so with
# everything present this runs no package manager at all. apt-get runs once
# for whatever is missing, through sudo unless we are root.
#
#   clickhouse-server   Debian's clickhouse-server (18.16) and clickhouse-client
#   zookeeper           ZooKeeper 3.8 and its JRE (the replicated-cluster tests, CLICKHOUSE_ENGINE=cluster)
#   python3-venv        python3 able to create .venv/ (chdb, schemathesis)
#   curl                curl (make run's readiness checks and examples)
#   chromium            Debian's chromium (the browser tests, testkit/browser) and
#                       fonts-liberation: only a Recommends of chromium, and a page
#                       without fonts screenshots as boxes
#   npm                 npm and node (installs the pinned axe-core, see the Makefile)
set -euo pipefail

pkgs=()
for need in "$@"; do
  case "$need" in
    clickhouse-server) [ -x /usr/sbin/clickhouse-server ] || pkgs+=(clickhouse-server clickhouse-client) ;;
    zookeeper) { [ -f /usr/share/java/zookeeper.jar ] && command -v java >/dev/null; } || pkgs+=(zookeeper) ;;
    # Debian ships python3 without ensurepip; python3-venv adds it.
    python3-venv) python3 -c 'import ensurepip, venv' 2>/dev/null || pkgs+=(python3-venv) ;;
    curl) command -v curl >/dev/null || pkgs+=(curl) ;;
    chromium) { [ -x /usr/bin/chromium ] && [ -d /usr/share/fonts/truetype/liberation ]; } || pkgs+=(chromium fonts-liberation) ;;
    npm) command -v npm >/dev/null || pkgs+=(npm) ;;
    *) echo "install.sh: unknown need '$need'" >&2; exit 2 ;;
  esac
done
[ ${#pkgs[@]} -eq 0 ] && exit 0

command -v apt-get >/dev/null || {
  echo "install.sh: missing ${pkgs[*]} and no apt-get here: install them with your package manager" >&2
  exit 1
}
SUDO=
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "install.sh: missing ${pkgs[*]}: run as root or install sudo" >&2; exit 1; }
  SUDO=sudo
fi
echo "==> installing ${pkgs[*]} (apt-get)"
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
