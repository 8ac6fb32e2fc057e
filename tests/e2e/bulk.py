"""Many containers on one network, removed at once, as compose down does."""

import concurrent.futures
import time

ACTIVE_ENDPOINTS = 'has active endpoints'


def run_container(dockerd, network, name):
    """Start a sleeping container, as ``docker run -d``.

    Through the API, not the CLI: on two cores, 48 CLI processes cost
    seconds.
    """
    dockerd.client.containers.run('bb:latest', ['sleep', '600'], name=name,
                                  network=network, detach=True)


def start_containers(dockerd, network, names, workers=8):
    """Start one sleeping container per name, several at once."""
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(run_container, dockerd, network, name)
                   for name in names]
        for future in futures:
            future.result()


def remove_containers(dockerd, names):
    """One ``docker rm -f`` of every name; return its seconds."""
    start = time.perf_counter()
    dockerd.cli('rm', '-f', *names)
    return time.perf_counter() - start


def remove_network(dockerd, network):
    """``docker network rm``; True if done, False if Docker says stuck.

    Any other failure raises.
    """
    res = dockerd.cli('network', 'rm', network, check=False)
    if res.returncode == 0:
        return True
    if ACTIVE_ENDPOINTS in res.stderr:
        return False
    res.check_returncode()


def unstick(dockerd, network):
    """Restart dockerd, which recounts endpoints, and remove the network."""
    dockerd.restart()
    dockerd.cli('network', 'rm', network)


def bulk_trial(dockerd, driver, subnet, n, prefix):
    """Make a network, start n containers, remove them and the network.

    Return (seconds of the ``docker rm -f``, whether the network was
    stuck). A stuck network is removed after a dockerd restart.
    """
    network = prefix + 'net'
    names = ['%s%02d' % (prefix, i) for i in range(n)]
    dockerd.cli('network', 'create', '-d', driver, '--subnet', subnet,
                network)
    try:
        start_containers(dockerd, network, names)
        took = remove_containers(dockerd, names)
        removed = remove_network(dockerd, network)
    except BaseException:
        cleanup(dockerd, names, network)
        raise
    if not removed:
        unstick(dockerd, network)
    return took, not removed


def cleanup(dockerd, names, network):
    """Remove what a trial made, whatever state it got to."""
    dockerd.cli('rm', '-f', *names, check=False, timeout=120)
    res = dockerd.cli('network', 'rm', network, check=False)
    if ACTIVE_ENDPOINTS in res.stderr:
        unstick(dockerd, network)
