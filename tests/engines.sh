#!/bin/bash
# Fetches the newest Docker Engine Debian packages (docker.io, docker-cli
# and docker-compose of Debian's development release) by package name with
# apt, into a cache of their own, and extracts them there: never installed
# over the host's docker.io. Prints the directory they are extracted in
# (usr/sbin/dockerd, usr/bin/docker, usr/libexec/docker/cli-plugins/).
#
#   OCN_ENGINE_CACHE   where (default /var/cache/opencontrail-net-tests)
#   OCN_ENGINE_SUITE   the Debian suite (default sid)
set -eu
cache=${OCN_ENGINE_CACHE:-/var/cache/opencontrail-net-tests}/engines
suite=${OCN_ENGINE_SUITE:-sid}
apt_dir=$cache/apt-$suite
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"

# The archive this host's apt uses, with the other suite.
uri=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources \
      2>/dev/null | grep -v security | head -n1)
if [ -z "$uri" ]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ {
               for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; exit }
           }' /etc/apt/sources.list 2>/dev/null)
fi
uri=${uri:-http://deb.debian.org/debian}
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]" \
     "$uri $suite main" > "$apt_dir/sources.list"
apt_opts=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list"
          -o "Dir::Etc::sourceparts=-"
          -o "Dir::State::Lists=$apt_dir/lists"
          -o "Dir::Cache=$apt_dir/cache"
          -o "Acquire::Check-Valid-Until=false"
          -o "APT::Sandbox::User=root")
packages=(docker.io docker-cli docker-compose)

# Refreshed once a day; a cached extraction serves when apt cannot answer.
stamp=$apt_dir/updated
if [ ! -e "$stamp" ] || [ -n "$(find "$stamp" -mmin +1440)" ]; then
    if apt-get "${apt_opts[@]}" update -qq >/dev/null 2>&1; then
        touch "$stamp"
    fi
fi
versions=$(apt-cache "${apt_opts[@]}" show --no-all-versions \
           "${packages[@]}" 2>/dev/null | sed -n 's/^Version: //p' |
           paste -sd_)
if [ -z "$versions" ]; then
    found=$(ls -d "$cache"/root-* 2>/dev/null | tail -n1)
    if [ -n "$found" ]; then echo "$found"; exit 0; fi
    echo "engines.sh: no $suite packages of ${packages[*]}" >&2
    exit 1
fi
root=$cache/root-$(printf %s "$versions" | tr -c 'A-Za-z0-9._+-' _)
if [ ! -x "$root/usr/sbin/dockerd" ]; then
    (
        flock 9
        if [ ! -x "$root/usr/sbin/dockerd" ]; then
            debs=$(mktemp -d "$cache/debs.XXXXXX")
            (cd "$debs" && apt-get "${apt_opts[@]}" download -qq \
                "${packages[@]}" >/dev/null)
            tmp=$(mktemp -d "$cache/root.XXXXXX")
            for deb in "$debs"/*.deb; do dpkg -x "$deb" "$tmp"; done
            rm -rf "$debs" "$root"
            mv "$tmp" "$root"
            chmod 755 "$root"
        fi
    ) 9>"$cache/.lock"
fi
echo "$root"
