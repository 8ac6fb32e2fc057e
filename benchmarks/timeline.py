"""Where a ``docker run --rm`` spends its time, on Docker's side.

Runs ``docker run --rm bb true`` on ``--net none``, Docker's bridge and a
driver network (embedded default) of a private dockerd started with
``--debug``, and prints, for one run of each (the median run), dockerd's
debug log lines with milliseconds since the command started: container
create, network setup ("sandbox set key processing took ..."), exit and
network teardown (from "Revoking external connectivity" to "Releasing
addresses"). The driver's own side is in ``bench_lifecycle.py`` (a).

Run as root from the repository: ``python benchmarks/timeline.py``.
"""

import argparse
import datetime
import os
import re
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from tests import netns as nsmod  # noqa: E402
from tests.e2e import dockerd as harness  # noqa: E402
from tests.e2e import plugin as plugin_mod  # noqa: E402

LINE = re.compile(r'time="([^"]+)" level=\w+ msg="(.*?)"')
NETS = ('none', 'tlbridge', 'tlocn')


def _stamp(text):
    # RFC 3339 with nanoseconds: microseconds are enough here.
    head, _, rest = text.partition('.')
    micros = (rest.rstrip('Z')[:6]).ljust(6, '0')
    moment = datetime.datetime.strptime(head + '.' + micros,
                                        '%Y-%m-%dT%H:%M:%S.%f')
    return moment.replace(tzinfo=datetime.timezone.utc).timestamp()


def one_run(daemon, net):
    """(seconds, [(ms since start, message)]) of one docker run --rm."""
    with open(daemon.log_path, 'rb') as f:
        f.seek(0, os.SEEK_END)
        pos = f.tell()
    start = time.time()
    daemon.cli('run', '--rm', '--net', net, 'bb:latest', 'true')
    took = time.time() - start
    with open(daemon.log_path, errors='replace') as f:
        f.seek(pos)
        lines = f.read().splitlines()
    events = []
    for line in lines:
        m = LINE.search(line)
        if m:
            events.append(((_stamp(m.group(1)) - start) * 1e3,
                           m.group(2)[:110]))
    return took, events


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=7)
    args = parser.parse_args()
    namespaces = nsmod.Namespaces()
    ns = namespaces.add(nsmod.unique('ocntl'))
    daemon = harness.DockerDaemon(harness.make_base_dir(), netns=ns,
                                  extra_args=['--debug'])
    drv = plugin_mod.DockerPlugin('ocntl' + uuid.uuid4().hex[:4],
                                  port_driver='bridge', debug='false',
                                  docker_url=daemon.url, netns=ns)
    runs = {net: [] for net in NETS}
    try:
        daemon.start()
        daemon.import_busybox()
        drv.start()
        daemon.cli('network', 'create', '-d', 'bridge', '--subnet',
                   '10.98.0.0/24', 'tlbridge')
        daemon.cli('network', 'create', '-d', drv.name, '--subnet',
                   '10.97.0.0/24', 'tlocn')
        for net in NETS:
            one_run(daemon, net)  # warm up
        for _ in range(args.runs):
            for net in NETS:
                runs[net].append(one_run(daemon, net))
        daemon.cli('network', 'rm', 'tlbridge', 'tlocn')
    finally:
        drv.close()
        daemon.stop()
        namespaces.close()
    for net in NETS:
        ordered = sorted(runs[net], key=lambda r: r[0])
        took, events = ordered[len(ordered) // 2]
        print('=== %s: median run %.3f s' % (net, took))
        for ms, msg in events:
            print('%8.1f ms  %s' % (ms, msg))


if __name__ == '__main__':
    main()
