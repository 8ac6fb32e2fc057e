"""The cluster benchmark's report: the markdown table and the plot.

``report`` is what ``bench_cluster.main`` returns: the server, the
network layout, the duration, the machine and one result per host
count (with the server's ceiling measured for it).
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


def _cpus(cpus):
    return '%s %s' % ('CPU' if len(cpus) == 1 else 'CPUs',
                      ', '.join(str(c) for c in cpus))


def _ceiling(ceiling):
    text = '%.0f (%d errors' % (ceiling['rate'], ceiling['errors'])
    if ceiling.get('server_cpu') is not None:
        text += ', server %.0f%% CPU' % (100 * ceiling['server_cpu'])
    return text + ')'


def _row(r):
    ceiling = r.get('ceiling')
    cells = ['%d' % r['hosts'], '%.1f' % r['starts_per_s']]
    cells += ['%.1f / %.1f' % (r['ms'][c]['p50'], r['ms'][c]['p99'])
              if c in r['ms'] else '-' for c in CALLS]
    errors = '%d' % r['errors']
    if r.get('warm_up_errors'):
        errors += ' (warm-up: %d)' % r['warm_up_errors']
    cells += ['%.2f' % r['requests_per_start'], errors,
              _ceiling(ceiling) if ceiling else '-',
              '%.2f' % r['efficiency'] if 'efficiency' in r else '-',
              '%.0f (%.0f)' % (r['pss_mib'], r['pss_mib'] / r['hosts']),
              '%.1f' % r['startup_s'],
              '%.1f' % r['load1'] if 'load1' in r else '-',
              ', '.join('%s %.1f' % kv for kv in
                        sorted(r.get('cpu_ms_per_start', {}).items()))]
    return '| ' + ' | '.join(cells) + ' |'


def table(report):
    heads = (['hosts', 'starts/s'] +
             ['%s p50 / p99 ms' % c for c in CALLS] +
             ['API requests / start', 'errors', 'ceiling requests/s',
              'efficiency', 'drivers PSS MiB (per host)', 'start-up s',
              'load', 'CPU ms / start'])
    counted = {'drivers': "the hosts straight at it, requests counted in "
               "the drivers' metrics",
               'proxy': 'the hosts through the counting proxy, requests '
               'counted there'}[report.get('count_at', 'proxy')]
    said = 'Server: %s (%s); %s networks; %g s per N; port pool %d; ' \
        'machine: %s.' % (report['server'], counted, report['network'],
                          report['duration'], report.get('port_pool_size', 0),
                          report['machine'])
    cpus = report.get('cpus')
    if cpus and cpus['split']:
        said += ' CPUs: the server on %s, the hosts and clients on %s.' % (
            _cpus(cpus['server']), _cpus(cpus['hosts']))
    elif cpus:
        said += ' CPUs: all shared (%s).' % cpus['why']
    lines = [said, '', '| ' + ' | '.join(heads) + ' |',
             '|' + '---|' * len(heads)]
    lines += [_row(r) for r in report['results']]
    return '\n'.join(lines) + '\n'


def plot(report, path):
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot

    results = report['results']
    ns = [r['hosts'] for r in results]
    fig, (left, right) = pyplot.subplots(1, 2, figsize=(10, 4))
    left.plot(ns, [r['starts_per_s'] for r in results], 'o-',
              label='measured')
    if all(r.get('ceiling') and r['requests_per_start'] for r in results):
        left.plot(ns, [r['ceiling']['rate'] / r['requests_per_start']
                       for r in results], 'k--',
                  label="the server's ceiling / requests per start")
    left.legend()
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
