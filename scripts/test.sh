#!/usr/bin/env bash
# Install what the test suite needs (system packages when root, the project and its test
# extras in .venv) and run the whole suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_needed=()
command -v kubectl >/dev/null 2>&1 || apt_needed+=(kubernetes-client)
command -v dig >/dev/null 2>&1 || apt_needed+=(bind9-dnsutils)
command -v ip >/dev/null 2>&1 || apt_needed+=(iproute2)
command -v nft >/dev/null 2>&1 || apt_needed+=(nftables)
command -v conntrack >/dev/null 2>&1 || apt_needed+=(conntrack)
command -v setpriv >/dev/null 2>&1 || apt_needed+=(util-linux)
if ((${#apt_needed[@]})); then
  if [ "$(id -u)" = 0 ]; then
    echo "installing system packages: ${apt_needed[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_needed[@]}" >/dev/null
  else
    echo "not root: cannot install ${apt_needed[*]}; the tests that need them will skip" >&2
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
exec .venv/bin/python -m pytest "$@"
