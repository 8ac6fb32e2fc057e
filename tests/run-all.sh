#!/bin/bash
# Runs every test suite (unit, functional, end-to-end, multi-host) as root
# on Debian.
# Installs what the tests need: Debian packages, and the Python packages in
# a virtualenv (.venv, or $OCN_VENV).
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "run-all.sh: run as root (the tests make namespaces and a dockerd)" >&2
    exit 1
fi

missing=()
for pkg in docker.io busybox-static iproute2 etcd-server nftables \
        python3-nftables; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
fi

venv=${OCN_VENV:-.venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check \
    -r requirements.txt -r test-requirements.txt
"$venv/bin/pip" install -q --disable-pip-version-check --no-deps -e .
# libnftables' binding comes from Debian, not PyPI: that one package (not
# every system package) is linked into the virtualenv.
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
ln -sfn /usr/lib/python3/dist-packages/nftables "$site/nftables"

exec "$venv/bin/python" -m pytest -p no:cacheprovider -ra "$@" tests
