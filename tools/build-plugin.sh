#!/bin/bash
# Creates the managed (v2) plugin NAME:latest on the Docker daemon that
# DOCKER_HOST names (or the default one), from this checkout, with no
# registry: the plugin's rootfs is assembled from this host's Python (its
# binary, standard library and the shared libraries they load) and the
# packages of a virtualenv holding the checkout's requirements.
#
#   bash tools/build-plugin.sh NAME
#
# Run as root from the checkout. The plugin is created, not enabled: set
# its configuration directory first (see README, "Managed plugin").
# OCN_VENV names the virtualenv (default .venv; made if missing).
# OCN_PLUGIN_DIR, if set, keeps the assembled plugin (config.json and
# rootfs/) there, and a later run with the same directory reuses it: one
# assembly for the plugin of several daemons.
set -euo pipefail
cd "$(dirname "$0")/.."

name=${1:?usage: build-plugin.sh NAME}
venv=${OCN_VENV:-.venv}
python=$(readlink -f /usr/bin/python3)
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
docker=${DOCKER:-docker}

if [ -n "${OCN_PLUGIN_DIR:-}" ] && [ -f "$OCN_PLUGIN_DIR/config.json" ]; then
    "$docker" plugin rm "$name:latest" >/dev/null 2>&1 || true
    "$docker" plugin create "$name:latest" "$OCN_PLUGIN_DIR" >/dev/null
    echo "$name:latest"
    exit 0
fi

if ! "$venv/bin/python" -c 'import oslo_config, cherrypy, vnc_api' \
        2>/dev/null; then
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check \
        -r requirements.txt
fi
site=$("$venv/bin/python" -c \
    'import sysconfig; print(sysconfig.get_paths()["purelib"])')

if [ -n "${OCN_PLUGIN_DIR:-}" ]; then
    work=$OCN_PLUGIN_DIR
    mkdir -p "$work"
    trap 'rm -rf "$work/files" "$work/meta"' EXIT
else
    work=$(mktemp -d /tmp/ocn-plugin-XXXXXX)
    trap 'rm -rf "$work"' EXIT
fi
root=$work/rootfs
rm -rf "$root"  # What a failed run left.
mkdir -p "$root"/{usr/local/bin,usr/local/lib,opt/opencontrail-net,tmp} \
    "$root"/{etc/opencontrail-net,run/docker/plugins,var/lib/opencontrail-net}
mkdir -p "$root"/{proc,sys,dev}
chmod 1777 "$root/tmp"

# Python as the official python images lay it out (/usr/local), so the
# same config.json serves a rootfs built from such an image (Dockerfile).
cp "$python" "$root/usr/local/bin/python$pyver"
ln -s "python$pyver" "$root/usr/local/bin/python3"
tar -C /usr/lib -c --exclude=test --exclude=idlelib --exclude=tkinter \
    --exclude=ensurepip --exclude=lib2to3 --exclude=pydoc_data \
    --exclude=turtledemo --exclude=distutils "python$pyver" |
    tar -C "$root/usr/local/lib" -x

# The distributions requirements.txt needs, and nothing else of the
# virtualenv (its test tools stay out); hard links where they can be.
packages=$root/opt/opencontrail-net/site-packages
mkdir -p "$packages"
"$venv/bin/python" - requirements.txt > "$work/files" <<'PY'
import importlib.metadata as md
import sys

try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement

todo = [line.split('#')[0].strip() for line in open(sys.argv[1])]
seen, top = set(), set()
while todo:
    text = todo.pop()
    if not text:
        continue
    req = Requirement(text)
    name = req.name.lower().replace('_', '-')
    if name in seen or (req.marker and not req.marker.evaluate(
            {'extra': ''})):
        continue
    seen.add(name)
    dist = md.distribution(name)
    todo.extend(dist.requires or [])
    for f in dist.files or []:
        part = f.parts[0]
        if part not in ('..', '__pycache__') and not part.startswith(
                '__editable__') and part != 'opencontrail_net':
            top.add(part)
print('\n'.join(sorted(top)))
PY
(cd "$site" && xargs -d '\n' cp -al --parents -t "$packages" \
    < "$work/files" 2>/dev/null) ||
    (cd "$site" && xargs -d '\n' cp -a --parents -t "$packages" \
        < "$work/files")
mkdir "$packages/opencontrail_net"
tar -C opencontrail_net -c --exclude=__pycache__ . |
    tar -C "$packages/opencontrail_net" -x
if ! ls -d "$packages"/opencontrail_net-*.dist-info >/dev/null 2>&1; then
    # PEP 517 builds a wheel (dist-info) in an isolated environment even
    # where the virtualenv has no 'wheel' (Debian's python3 -m venv):
    # without it pip falls back to 'setup.py install' and an egg-info.
    "$venv/bin/pip" install -q --disable-pip-version-check --no-deps \
        --use-pep517 --target "$work/meta" .
    cp -a "$work"/meta/opencontrail_net-*.dist-info "$packages/"
fi

# Every shared library the interpreter and the extension modules load.
find "$root" -type f \( -name '*.so' -o -name '*.so.*' \) -print0 |
    xargs -0 ldd "$python" 2>/dev/null |
    awk '/=> \// {print $3} /^\t\/[^ ]+ \(/ {print $1}' | sort -u |
    while read -r lib; do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done

# config.json: the interfaces are what Plugin.Activate answers.
# Written last: a kept directory with a config.json is a whole one.
PYTHONPATH=. "$venv/bin/python" -m opencontrail_net.managed_plugin \
    > "$work/config.json.new"
mv "$work/config.json.new" "$work/config.json"

# A plugin of that name that is enabled stays: create then fails.
"$docker" plugin rm "$name:latest" >/dev/null 2>&1 || true
"$docker" plugin create "$name:latest" "$work" >/dev/null
echo "$name:latest"
