#!/usr/bin/env bash
# Installs the system packages the full test suite needs, when it can (root) and should (CI=true).
# Outside CI a missing part only makes its tests skip, with a message saying how to get it.
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v hledger >/dev/null 2>&1 || need+=(hledger)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
ci="${CI:-}"
if [[ "$ci" =~ ^(1|true|yes)$ ]] && [ "$(id -u)" = 0 ]; then
  echo "installing system packages: ${need[*]}"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "note: missing system packages (${need[*]}); their tests will skip."
  echo "      install them with: sudo apt-get install ${need[*]}   (or run with CI=true as root)"
fi
