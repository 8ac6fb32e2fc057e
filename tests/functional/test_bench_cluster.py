"""The cluster benchmark's harness (benchmarks/bench_cluster.py) keeps
working: two hosts against the fake for a couple of seconds start
containers with no error, and leave no process or file behind."""

import os

from benchmarks import bench_cluster


def test_two_hosts_start_containers_without_errors(capsys):
    report = bench_cluster.main(['--hosts', '2', '--duration', '2',
                                 '--ceiling-seconds', '0.5'])
    (result,) = report['results']
    assert result['starts'] > 0, result
    assert result['errors'] == 0, result['last_error']
    # A start makes Contrail objects: the proxy counted their requests.
    assert result['requests_per_start'] > 0, result
    assert result['ceiling']['rate'] > 0
    assert result['ceiling']['errors'] == 0, result['ceiling']
    assert 0 < result['efficiency']
    # Each host's calls came on one connection, as dockerd's do.
    assert result['connections'] == 2, result['connections']
    table = capsys.readouterr().out
    assert '\n| 2 | %.1f |' % result['starts_per_s'] in table, table
    assert not os.path.exists(report['workdir'])
    for pid in result['pids']:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        raise AssertionError('driver process %d left running' % pid)
