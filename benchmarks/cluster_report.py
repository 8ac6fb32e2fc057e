"""The cluster benchmark's report: the markdown table and the plot.

``report`` is what ``bench_cluster.main`` returns: the server, the
network layout, the duration, the machine, the ceiling and one result
per host count.
"""

import os
import platform

CALLS = ('CreateEndpoint', 'Join', 'Leave', 'DeleteEndpoint')


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f
                       if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
    return '%d x %s, %.0f GiB' % (os.cpu_count(), cpu, mem / 2 ** 30)


def table(report):
    lines = ['| hosts | starts/s | ' + ' | '.join(
        '%s p50 / p99 ms' % c for c in CALLS) +
        ' | API requests / start | errors | efficiency | drivers PSS MiB'
        ' (per host) | start-up s |',
        '|' + '---|' * (len(CALLS) + 8)]
    for r in report['results']:
        lines.append('| %d | %.1f | %s | %.2f | %d | %s | %.0f (%.0f) | %.1f |'
                     % (r['hosts'], r['starts_per_s'], ' | '.join(
                         '%.1f / %.1f' % (r['ms'][c]['p50'], r['ms'][c]['p99'])
                         if c in r['ms'] else '-' for c in CALLS),
                        r['requests_per_start'], r['errors'],
                        '%.2f' % r['efficiency'] if 'efficiency' in r
                        else '-', r['pss_mib'], r['pss_mib'] / r['hosts'],
                        r['startup_s']))
    c = report.get('ceiling')
    head = ['Server: %s; %s networks; %g s per N; machine: %s.' % (
        report['server'], report['network'], report['duration'],
        report['machine'])]
    if c:
        head.append('Ceiling for the same request mix (minimal client): '
                    '%.0f requests/s (%s; %d errors).' % (
                        c['rate'], ', '.join('%s threads %.0f' % kv for kv in
                                             sorted(c['by_threads'].items())),
                        c['errors']))
    return '\n'.join(head + [''] + lines) + '\n'


def plot(report, path):
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot

    results = report['results']
    ns = [r['hosts'] for r in results]
    fig, (left, right) = pyplot.subplots(1, 2, figsize=(10, 4))
    left.plot(ns, [r['starts_per_s'] for r in results], 'o-')
    left.set_title('starts/s')
    for c in CALLS:
        right.plot(ns, [r['ms'].get(c, {}).get('p99') for r in results],
                   'o-', label=c)
    right.set_title('p99 per call (ms)')
    right.legend()
    for ax in (left, right):
        ax.set_xscale('log', base=2)
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.set_xlabel('hosts')
        ax.set_ylim(bottom=0)
    fig.suptitle('%s, %s networks' % (report['server'], report['network']))
    fig.tight_layout()
    fig.savefig(path, dpi=80)
