#!/bin/bash
# Runs every test suite (unit, functional, end-to-end, multi-host) as root
# on Debian. Installs what the tests need: Debian packages, the Python
# packages in a virtualenv (.venv, or $OCN_VENV), and Keystone in a
# virtualenv of its own (/opt/ocn-keystone, or $OCN_KEYSTONE_VENV) for the
# tests with auth.
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
# libnftables' binding comes from Debian, not PyPI, and the driver loads it
# from there by itself, as from the README's plain virtualenv: no link into
# this one (one an earlier run made goes).
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [ -L "$site/nftables" ]; then rm -f "$site/nftables"; fi

# Keystone's dependencies would clash with the driver's: a venv of its own,
# made once (the stamp names the version), under a lock for parallel runs.
keystone_version=30.0.0
ks_venv=${OCN_KEYSTONE_VENV:-/opt/ocn-keystone}
if [ ! -e "$ks_venv/.installed-keystone-$keystone_version" ]; then
    mkdir -p "$(dirname "$ks_venv")"
    (
        flock 9
        if [ ! -e "$ks_venv/.installed-keystone-$keystone_version" ]; then
            [ -x "$ks_venv/bin/python" ] || python3 -m venv "$ks_venv"
            "$ks_venv/bin/pip" install -q --disable-pip-version-check \
                "keystone==$keystone_version"
            touch "$ks_venv/.installed-keystone-$keystone_version"
        fi
    ) 9>"$ks_venv.lock"
fi
export OCN_KEYSTONE_VENV=$ks_venv OCN_KEYSTONE_REQUIRED=1

# The newest Docker Engine Debian packages (its development release's
# docker.io, docker-cli and docker-compose), fetched by name with apt into
# a cache and extracted there, never installed over the host's.
engine2=$(bash tests/engines.sh)

# Coverage of opencontrail_net/ ([coverage:run] in setup.cfg) over the
# three runs below and every Python process they start, the drivers too:
# each writes a data file of its own, combined at the end.
coverage=("$venv/bin/python" -m coverage)
"${coverage[@]}" erase

# Tests marked "alone" measure a race of Docker's own, which a busy host
# changes: they run first, by themselves. The rest run on two workers
# (pytest-xdist), a module to a worker: a module's fixtures stay its own.
pytest=("${coverage[@]}" run -m pytest -p no:cacheprovider -ra)
# The race they measure is Docker's and the driver's timing, which
# measuring coverage changes: they run without it.
first=0
"$venv/bin/python" -m pytest -p no:cacheprovider -ra -m alone "$@" tests ||
    first=$?
# 5: nothing selected (arguments that leave out the "alone" tests).
[ "$first" = 5 ] && first=0
rest=0
"${pytest[@]}" -n "${OCN_TEST_WORKERS:-2}" --dist loadfile -m 'not alone' \
    "$@" tests || rest=$?
[ "$rest" = 5 ] && rest=0

# The end-to-end modules whose subject the newer engine changed (its
# firewall, IPv6, compose v2, pacing), again on that engine; its summary
# names it.
second=0
if [ "$#" = 0 ] || [ -n "${OCN_ENGINE_ALWAYS:-}" ]; then
    OCN_DOCKER_ENGINE=$engine2 "${pytest[@]}" \
        -n "${OCN_TEST_WORKERS:-2}" --dist loadfile -m 'not alone' "$@" \
        tests/e2e/test_stock_host.py tests/e2e/test_ports.py \
        tests/e2e/test_mock_bridge.py tests/e2e/test_ipam.py \
        tests/e2e/test_operate.py tests/e2e/test_compose.py \
        tests/e2e/test_dockerd_restart.py tests/e2e/test_vrouter.py || second=$?
    [ "$second" = 5 ] && second=0
fi

# A few lines after the summaries: the total against its floor
# ([coverage:report] fail_under, which `coverage json` holds it to: 2 when
# under it), and the modules under 80% with the reason each has in
# tests/coverage_reasons.txt. A run of some tests is held to neither.
held=() summary=()
if [ "$#" != 0 ]; then held=(--fail-under=0) summary=(--partial); fi
covered=0
"${coverage[@]}" combine -q || covered=$?
[ "$covered" != 0 ] || "${coverage[@]}" json -q "${held[@]}" || covered=$?
if [ "$covered" = 0 ] || [ "$covered" = 2 ]; then
    "$venv/bin/python" tests/coverage_summary.py "${summary[@]}" ||
        covered=$?
fi
for rc in "$first" "$rest" "$second" "$covered"; do
    if [ "$rc" != 0 ]; then exit "$rc"; fi
done
exit 0
