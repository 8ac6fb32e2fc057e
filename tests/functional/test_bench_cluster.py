"""The cluster benchmark's harness (benchmarks/bench_cluster.py) keeps
working: two hosts against the fake for a couple of seconds start
containers with no error, count the requests of a start as the proxy
recorded them, and leave no process or file behind."""

import os

import pytest

from benchmarks import bench_cluster


@pytest.mark.parametrize('count_at,cpus', [('drivers', 'split'),
                                           ('proxy', 'shared')])
def test_two_hosts_start_containers_without_errors(capsys, count_at, cpus):
    mine = os.sched_getaffinity(0)
    report = bench_cluster.main(['--hosts', '2', '--duration', '2',
                                 '--ceiling-seconds', '0.5',
                                 '--count-at', count_at, '--cpus', cpus])
    (result,) = report['results']
    # Split, the fake (it runs here) had a CPU of its own and the hosts
    # the others, as read back from the processes during the run; this
    # process has all its CPUs back.
    assert os.sched_getaffinity(0) == mine
    if cpus == 'split' and len(mine) >= 2:
        assert report['cpus']['split'], report['cpus']
        assert result['cpus']['server'] == [min(mine)], result['cpus']
        assert result['cpus']['hosts'] == sorted(mine - {min(mine)})
    else:
        assert not report['cpus']['split'], report['cpus']
        assert result['cpus'] == {'hosts': sorted(mine),
                                  'server': sorted(mine)}, result['cpus']
    assert result['counted_at'] == count_at
    assert result['starts'] > 0, result
    assert result['errors'] == 0, result['last_error']
    # Counted in the drivers' metrics or at the proxy, a start makes the
    # requests the recorder's start made through the proxy (the drivers'
    # periodic jobs may add a few to the whole run).
    one = result['requests_one_start']
    assert one >= 5, result
    assert one <= result['requests_per_start'] < one + 0.5, result
    assert result['ceiling']['rate'] > 0
    assert result['ceiling']['errors'] == 0, result['ceiling']
    # The fake runs here: its CPU at the best rate is reported (one
    # process, so at most about one CPU).
    assert 0 < result['ceiling']['server_cpu'] < 1.5, result['ceiling']
    assert 0 < result['efficiency']
    # Each host's calls came on one connection, as dockerd's do.
    assert result['connections'] == 2, result['connections']
    # The proxy's CPU is counted where the hosts' requests go through it.
    assert ('proxy' in result['cpu_ms_per_start']) == (count_at == 'proxy')
    table = capsys.readouterr().out
    assert '\n| 2 | %.1f |' % result['starts_per_s'] in table, table
    assert not os.path.exists(report['workdir'])
    # Two hosts and the recorder.
    assert len(result['pids']) == 3
    for pid in result['pids']:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        raise AssertionError('driver process %d left running' % pid)
