"""Measure the embedded default's cost as a network fills up.

Over the real socket of a driver process (mock backend, veth ports): one
network with the driver's IPAM, then N endpoints, each a RequestAddress
and a CreateEndpoint. Prints the median of each call for the first 500
and the last 500, and their ratio (the goal: flat, within 1.2x).

Run as root from the repository: ``python benchmarks/bench_ipam.py``.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from opencontrail_net import ipam  # noqa: E402
from tests import driverproc  # noqa: E402

NID = 'c' * 64


def timed(drv, name, body):
    start = time.perf_counter()
    status, reply = drv.call(name, body)
    took = time.perf_counter() - start
    assert status == 200, (name, reply)
    return took, reply


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--endpoints', type=int, default=10000)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix='ocnb-')
    drv = driverproc.DriverProcess(work, os.path.join(work, 'p.sock'),
                                   port_driver='veth', debug='false')
    try:
        drv.start()
        pool = drv.ok('IpamDriver.RequestPool', {
            'AddressSpace': ipam.LOCAL_SPACE, 'Pool': '10.96.0.0/12',
            'SubPool': '', 'Options': {}, 'V6': False})
        gateway = drv.ok('IpamDriver.RequestAddress', {
            'PoolID': pool['PoolID'], 'Address': '',
            'Options': {'RequestAddressType': ipam.GATEWAY}})['Address']
        drv.ok('NetworkDriver.CreateNetwork', {
            'NetworkID': NID, 'Options': {}, 'IPv4Data': [{
                'AddressSpace': ipam.LOCAL_SPACE, 'Pool': pool['Pool'],
                'Gateway': gateway}]})
        times = {'RequestAddress': [], 'CreateEndpoint': []}
        for n in range(args.endpoints):
            took, reply = timed(drv, 'IpamDriver.RequestAddress', {
                'PoolID': pool['PoolID'], 'Address': '', 'Options': None})
            times['RequestAddress'].append(took)
            took, _ = timed(drv, 'NetworkDriver.CreateEndpoint', {
                'NetworkID': NID, 'EndpointID': '%064x' % n,
                'Interface': {'Address': reply['Address']}})
            times['CreateEndpoint'].append(took)
        print('%d endpoints on one network (mock backend, over the socket)'
              % args.endpoints)
        for name, values in times.items():
            first = statistics.median(values[:500])
            last = statistics.median(values[-500:])
            print('%-15s first 500: %.2f ms  last 500: %.2f ms  ratio %.2fx'
                  % (name, first * 1e3, last * 1e3, last / first))
    finally:
        drv.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
