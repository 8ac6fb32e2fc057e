"""Invalid requests over the real socket: each refused, nothing made.

Raw sockets, not http.client: the client writes its whole request before
it reads, as Docker's (Go) and Python's clients do.
"""

import json
import os
import random
import sqlite3
import time

import pytest

from tests import driverproc
from tests.driverproc import exchange
from tests.driverproc import http_request
from tests.functional import conftest
from tests import netns as nsmod

NID = '7f' * 32
EID = 'e7' * 32
LIMIT = 1024 * 1024  # the default max_request_body
MIB = 1024 * 1024
CREATING = ('NetworkDriver.CreateNetwork', 'NetworkDriver.AllocateNetwork',
            'NetworkDriver.CreateEndpoint', 'NetworkDriver.Join')


BAD_IPAM = [
    ('IpamDriver.RequestPool', {'Pool': 'x'}),
    ('IpamDriver.RequestPool', {'Pool': '', 'SubPool': '10.0.0.0/24'}),
    ('IpamDriver.RequestPool', {'Pool': '10.0.0.0/24', 'V6': 'yes'}),
    ('IpamDriver.RequestPool', {'Pool': '10.0.0.0/24',
                                'SubPool': '10.1.0.0/25'}),
    ('IpamDriver.RequestPool', {'Pool': '10.0.0.0/24', 'Options': []}),
    ('IpamDriver.RequestPool', {'Pool': '10.0.0.0/24',
                                'Options': {'opencontrail.x': '1'}}),
    ('IpamDriver.RequestAddress', {'PoolID': 'zz'}),
    ('IpamDriver.RequestAddress', {'PoolID': 5}),
    ('IpamDriver.RequestAddress', {'PoolID': 'ocn1;10.0.0.0/24;;4;;;;',
                                   'Address': '11.0.0.1'}),
    ('IpamDriver.ReleaseAddress', {'PoolID': 'ocn1;10.0.0.0/24;;4;;;;'}),
    ('IpamDriver.ReleasePool', {'PoolID': 'LocalDefault/10.0.0.0/24'}),
]


def refused(reply, status=None):
    """The reply is Docker's error body, with the given status."""
    assert reply.headers['content-type'].startswith(
        'application/vnd.docker.plugins.v1+json'), reply.headers
    body = reply.json()
    assert body['Err'] and body['Err'] == body['Error'], body
    assert reply.status >= 400, (reply.status, body)
    if status is not None:
        assert reply.status == status, (reply.status, body)
    return body['Err']


@pytest.fixture
def host(namespaces):
    return namespaces.add()


@pytest.fixture
def drv(host, driver_factory):
    drv = driver_factory(netns=host, port_driver='bridge').start()
    yield drv
    assert 'Traceback' not in drv.log_text()


def network_body(nid=NID, pool='10.91.0.0/24', gateway='10.91.0.1/24'):
    return {'NetworkID': nid, 'Options': {
        'com.docker.network.generic': {'rt': '64512:91'}},
        'IPv4Data': [{'AddressSpace': 'LocalDefault', 'Pool': pool,
                      'Gateway': gateway}], 'IPv6Data': []}


def endpoint_body(nid=NID, eid=EID, address='10.91.0.2/24'):
    return {'NetworkID': nid, 'EndpointID': eid, 'Options': {},
            'Interface': {'Address': address, 'AddressIPv6': '',
                          'MacAddress': ''}}


def test_one_connection_serves_the_calls_after_errors(drv):
    """dockerd sends every call on the connection it keeps: an error
    answered on it leaves it serving the next call."""
    conn = driverproc.KeptAlive(drv.socket_path)
    try:
        steps = [
            ('NetworkDriver.CreateNetwork', {'raw': b'{"NetworkID": '}, 400),
            ('NetworkDriver.CreateNetwork', {'raw': b''}, 400),
            ('NetworkDriver.NoSuchCall', {'body': {}}, 404),
            ('NetworkDriver.CreateEndpoint', {'body': endpoint_body()}, None),
            ('NetworkDriver.CreateNetwork', {'body': dict(
                network_body(), IPv4Data=[{'Pool': 'x'}])}, 400),
            ('NetworkDriver.CreateNetwork', {'body': network_body()}, 200),
            ('NetworkDriver.CreateEndpoint', {'body': endpoint_body()}, 200),
            ('NetworkDriver.EndpointOperInfo', {'body': {
                'NetworkID': NID, 'EndpointID': EID}}, 200),
            ('NetworkDriver.DeleteEndpoint', {'body': {
                'NetworkID': NID, 'EndpointID': EID}}, 200),
            ('NetworkDriver.DeleteNetwork', {'body': {'NetworkID': NID}},
             200),
        ]
        for name, kwargs, status in steps:
            got, reply = conn.call(name, **kwargs)
            if status == 200:
                assert got == 200, (name, got, reply)
            else:
                assert got >= 400 and reply['Err'], (name, got, reply)
                if status is not None:
                    assert got == status, (name, got, reply)
        assert conn.connections == 1
    finally:
        conn.close()


def test_oversized_body_written_first_gets_a_json_413(drv):
    for size in (LIMIT + 1, 8 * MIB):
        body = b'{"NetworkID": "' + b'a' * size + b'"}'
        start = time.monotonic()
        reply = exchange(drv.socket_path, http_request(
            'NetworkDriver.CreateNetwork', body))
        assert time.monotonic() - start < 5
        err = refused(reply, 413)
        assert 'max_request_body' in err and str(LIMIT) in err
        assert reply.headers['connection'] == 'close' and reply.rest == b''
    assert "exceeds the limit of %d" % LIMIT in drv.log_text()
    drv.ok('Plugin.Activate')


def test_oversized_chunked_body_and_what_follows_it(drv):
    # A valid request right behind the oversized one, on the same
    # connection: it must not be taken for a request of its own.
    follower = http_request('NetworkDriver.CreateNetwork',
                            json.dumps(network_body()).encode())
    data = http_request('NetworkDriver.CreateNetwork', b'[' * (2 * MIB),
                        chunked=True, extra=follower)
    reply = exchange(drv.socket_path, data)
    refused(reply, 413)
    assert reply.rest == b''
    status, _ = drv.call('NetworkDriver.CreateEndpoint', endpoint_body())
    assert status == 404


def test_body_past_what_is_drained_is_refused_at_once(drv):
    # Only the headers: a length past the drain is refused unread.
    head = http_request('NetworkDriver.CreateNetwork')
    head = head.replace(b'Content-Length: 0', b'Content-Length: %d' % (
        1 << 40))
    refused(exchange(drv.socket_path, head), 413)
    chunk = http_request('NetworkDriver.CreateNetwork', chunked=True)
    chunk = chunk.replace(b'\r\n\r\n0\r\n', b'\r\n\r\nffffffffff\r\n')
    refused(exchange(drv.socket_path, chunk), 413)
    drv.ok('Plugin.Activate')


@pytest.mark.parametrize('coding', [
    b'zz\r\nab\r\n0\r\n\r\n', b'2\r\nabcd\r\n0\r\n\r\n',
    b'-1\r\n\r\n'])
def test_broken_chunked_coding_closes_the_connection(drv, coding):
    data = http_request('NetworkDriver.CreateNetwork', chunked=True)
    data = data.replace(b'\r\n\r\n0\r\n\r\n', b'\r\n\r\n' + coding)
    data += http_request('NetworkDriver.CreateNetwork',
                         json.dumps(network_body()).encode())
    reply = exchange(drv.socket_path, data)
    refused(reply, 400)
    assert reply.rest == b''
    assert drv.call('NetworkDriver.CreateEndpoint',
                    endpoint_body())[0] == 404


# -- the fuzz -----------------------------------------------------------------

WRONG_TYPES = [5, -1, 1.5, True, False, None, [], {}, [NID], {'a': NID},
               '', 'x' * 300]
BAD_IDS = ['zz', 'z' * 40, 'Q', 'A' * 25, 'AB' * 32, 'a' * 63, 'a' * 65,
           'g' * 64, ' ' + 'a' * 63, 'a' * 64 + '\n', '\u00e9' * 64,
           '../' + 'a' * 61, 'a' * 24, 'a' * 26, '0x' + 'a' * 62,
           'a' * 32 + '-' + 'a' * 31, 'a' * 4096, '\u0663' * 64,
           'A' + 'a' * 63, 'a' * 24 + 'A']
BAD_CIDRS = ['', 'x', '10.0.0.0/33', '300.1.1.0/24', '10.0.0.0/-1',
             '10.0.0/24', '10.0.0.0//24', 'fe80::/129', '10.0.0.0/24/1',
             '10.0.0.0 /24', ' ', '::/x', 167772160, None, True, [], {}]
BAD_MACS = ['zz:zz', '02:42:ac:11:00', '02:42:ac:11:00:02:03', '0242ac110002',
            '02-42-ac-11-00-02', 5, True, [], {}, 'g2:42:ac:11:00:02']
BAD_OPTIONS = [
    {'rt': 'banana'}, {'rt': '64512'}, {'rt': '64512:x'}, {'rt': '0:5'},
    {'rt': '70000:70000'}, {'rt': '10.1.2.3:70000'}, {'rt': '1.2.3:4'},
    {'rt': '64512:8000000'}, {'rt': '64512:100,banana'}, {'rt': ':'},
    {'rt': '4294967296:1'}, {'opencontrail.rt.import': 'x'},
    {'opencontrail.rt.export': '64512:'}, {'mtu': 'big'}, {'mtu': '20'},
    {'mtu': '70000'}, {'tenant': 'a:b:c'}, {'tenant': 'a/b'},
    {'name': 'has/slash'}, {'name': 'a:b'}, {'name': ''},
    {'opencontrail.network': 'nope'}, {'opencontrail.colour': 'red'},
    {'rt': '64512:1', 'opencontrail.rt': '64512:2'},
    {'opencontrail.ipam': 'a/b'}]


def templates(sandbox_key):
    """A valid-looking body per call, on the network and endpoint made."""
    ep = {'NetworkID': NID, 'EndpointID': EID}
    return {
        'NetworkDriver.CreateNetwork': network_body(),
        'NetworkDriver.AllocateNetwork': network_body(),
        'NetworkDriver.CreateEndpoint': endpoint_body(),
        'NetworkDriver.Join': dict(ep, SandboxKey=sandbox_key, Options={}),
        'NetworkDriver.DeleteNetwork': {'NetworkID': NID},
        'NetworkDriver.FreeNetwork': {'NetworkID': NID},
        'NetworkDriver.EndpointOperInfo': dict(ep),
        'NetworkDriver.DeleteEndpoint': dict(ep),
        'NetworkDriver.Leave': dict(ep),
        'NetworkDriver.ProgramExternalConnectivity': dict(ep, Options={}),
        'NetworkDriver.RevokeExternalConnectivity': dict(ep),
    }


def random_bad_id(rng):
    if rng.random() < 0.5:
        return rng.choice(BAD_IDS)
    # Right length and alphabet but one character out of it.
    value = list('%064x' % rng.getrandbits(256))
    if rng.random() < 0.3:
        value = value[:25]
    value[rng.randrange(len(value))] = rng.choice('GZQ-_ .:/\u00e9\x00')
    return ''.join(value)


def fuzz_requests(rng, sandbox_key):
    """Yield (call, request bytes, what it is) for invalid requests."""
    base = templates(sandbox_key)
    calls = sorted(base)

    def framed(call, body, **kwargs):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return call, http_request(call, raw, **kwargs)

    # Malformed JSON, and JSON that is no object.
    for _ in range(150):
        call = rng.choice(calls)
        good = json.dumps(base[call]).encode()
        kind = rng.randrange(6)
        if kind == 0:
            raw = bytes(rng.getrandbits(8) for _ in range(rng.randrange(
                1, 200)))
            if not raw.strip():
                raw = b'{'
        elif kind == 1:
            raw = good[:rng.randrange(1, len(good))]
        elif kind == 2:
            raw = rng.choice([b'[]', b'1', b'"x"', b'null', b'true',
                              b'[' + good + b']', b'NaN', b'{"a":1}{}'])
        elif kind == 3:
            depth = rng.randrange(1000, 100000)
            raw = b'[' * depth
        elif kind == 4:
            raw = good.replace(b'"', b"'", 1)
        else:
            raw = b'\xff\xfe' + good
        yield framed(call, raw, chunked=rng.random() < 0.2)

    # A field of the wrong type.
    for _ in range(250):
        call = rng.choice(calls)
        body = json.loads(json.dumps(base[call]))
        path = rng.choice(_typed_fields(call))
        _put(body, path, rng.choice(WRONG_TYPES))
        yield framed(call, body, chunked=rng.random() < 0.1)

    # Bad IDs.
    for _ in range(250):
        call = rng.choice(calls)
        body = dict(base[call])
        keys = [k for k in ('NetworkID', 'EndpointID') if k in body]
        key = rng.choice(keys)
        if rng.random() < 0.1:
            del body[key]
        else:
            body[key] = random_bad_id(rng)
            if key == 'EndpointID' and rng.random() < 0.3:
                body[key] = 'x3k9q0w2e8r7t6y5u4i1o2p3a'
        yield framed(call, body)

    # CIDRs, addresses and MACs.
    for _ in range(150):
        if rng.random() < 0.5:
            body = network_body()
            entry = body['IPv4Data'][0]
            what = rng.choice(['Pool', 'Gateway', 'Aux', 'V6', 'Outside'])
            if what == 'Aux':
                entry['AuxAddresses'] = {'a': rng.choice(BAD_CIDRS)}
            elif what == 'V6':
                body['IPv4Data'] = [{'Pool': 'fd00:91::/64'}]
            elif what == 'Outside':
                entry['Gateway'] = '10.92.0.1/24'
            else:
                value = rng.choice(BAD_CIDRS)
                if what == 'Gateway' and value in ('', None):
                    value = 'x'
                entry[what] = value
            yield framed(rng.choice(['NetworkDriver.CreateNetwork',
                                     'NetworkDriver.AllocateNetwork']), body)
        else:
            body = endpoint_body()
            key = rng.choice(['Address', 'AddressIPv6', 'MacAddress'])
            value = rng.choice(BAD_MACS if key == 'MacAddress' else
                               [c for c in BAD_CIDRS if c] + [
                                   'fd00:91::2/64' if key == 'Address'
                                   else '10.91.0.2/24'])
            body['Interface'][key] = value
            yield framed('NetworkDriver.CreateEndpoint', body)

    # Route targets and other options.
    for _ in range(120):
        body = network_body()
        body['Options']['com.docker.network.generic'] = dict(
            rng.choice(BAD_OPTIONS))
        yield framed(rng.choice(['NetworkDriver.CreateNetwork',
                                 'NetworkDriver.AllocateNetwork']), body)

    # Unknown networks, endpoints and calls; other methods.
    for _ in range(120):
        other = '%064x' % rng.getrandbits(256)
        kind = rng.randrange(6)
        if kind == 0:
            yield framed('NetworkDriver.CreateEndpoint',
                         endpoint_body(nid=other, eid=other))
        elif kind == 1:
            yield framed('NetworkDriver.Join', dict(
                base['NetworkDriver.Join'], EndpointID=other))
        elif kind == 2:
            yield framed('NetworkDriver.Join', dict(
                base['NetworkDriver.Join'], NetworkID=other))
        elif kind == 3:
            name = rng.choice(['NetworkDriver.Bogus', 'IpamDriver.Bogus',
                               'Plugin.activate', '', '../etc/passwd',
                               'NetworkDriver.CreateNetwork/x', '%00'])
            yield framed(name, network_body())
        elif kind == 5:
            yield framed(*rng.choice(BAD_IPAM))
        else:
            call = rng.choice(calls)
            yield call, http_request(call, json.dumps(base[call]).encode(),
                                     method=rng.choice(['GET', 'PUT',
                                                        'DELETE']))

    # Oversized bodies, plain and chunked, some valid apart from their size.
    for n in range(24):
        call = rng.choice(CREATING)
        size = rng.choice([LIMIT + 1, 2 * MIB, 8 * MIB])
        pad = {'Pad': 'p' * size}
        body = json.dumps(dict(base[call], **pad)).encode()
        yield framed(call, body, chunked=n % 2 == 1)


def _typed_fields(call):
    common = [('NetworkID',)]
    if call in ('NetworkDriver.CreateNetwork',
                'NetworkDriver.AllocateNetwork'):
        return common + [('Options',), ('IPv4Data',), ('IPv6Data',),
                         ('IPv4Data', 0), ('IPv4Data', 0, 'Pool'),
                         ('IPv4Data', 0, 'Gateway'),
                         ('IPv4Data', 0, 'AuxAddresses'),
                         ('Options', 'com.docker.network.generic')]
    if call == 'NetworkDriver.CreateEndpoint':
        return common + [('EndpointID',), ('Interface',),
                         ('Interface', 'Address'),
                         ('Interface', 'AddressIPv6'),
                         ('Interface', 'MacAddress')]
    if call == 'NetworkDriver.Join':
        return common + [('EndpointID',), ('SandboxKey',)]
    if call in ('NetworkDriver.DeleteNetwork', 'NetworkDriver.FreeNetwork'):
        return common
    return common + [('EndpointID',)]


def _put(body, path, value):
    # Where a field is optional, values that stand for "not given" (and
    # objects of unknown keys) are valid: give something wrong instead.
    optional = {('Options',), ('IPv4Data',), ('IPv6Data',),
                ('IPv4Data', 0, 'Gateway'), ('IPv4Data', 0, 'AuxAddresses'),
                ('Options', 'com.docker.network.generic'), ('Interface',),
                ('Interface', 'Address'), ('Interface', 'AddressIPv6'),
                ('Interface', 'MacAddress')}
    if path in optional and (not value or isinstance(value, dict)):
        value = 5
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value


def backend_counts(drv):
    path = os.path.join(drv.options['state_path'], 'mock-backend.sqlite')
    db = sqlite3.connect(path)
    try:
        return {t: db.execute('SELECT COUNT(*) FROM %s' % t).fetchone()[0]
                for t in ('networks', 'endpoints', 'vms')}
    finally:
        db.close()


def test_fuzz(namespaces, host, drv):
    sandbox = namespaces.add()
    sandbox_key = '/run/netns/' + sandbox
    # One network and one endpoint, so that requests reach past the IDs.
    drv.ok('NetworkDriver.CreateNetwork', network_body())
    drv.ok('NetworkDriver.CreateEndpoint', endpoint_body())
    counts, links = backend_counts(drv), nsmod.links(host)
    assert counts == {'networks': 1, 'endpoints': 1, 'vms': 0}

    rng = random.Random(20240611)
    seen, slowest = 0, 0.0
    for call, data in fuzz_requests(rng, sandbox_key):
        start = time.monotonic()
        reply = exchange(drv.socket_path, data)
        took = time.monotonic() - start
        assert took < 5, (call, data[:300])
        slowest = max(slowest, took)
        try:
            refused(reply)
        except (AssertionError, ValueError, KeyError):
            raise AssertionError('%s accepted or not refused clearly: %s %r'
                                 '\nrequest: %r' % (call, reply.status,
                                                    reply.body[:300],
                                                    data[:600]))
        if reply.rest is not None:
            assert reply.rest == b'', (call, reply.rest[:200])
        seen += 1
    assert seen >= 1000
    assert drv.proc.poll() is None
    assert backend_counts(drv) == counts
    assert nsmod.wait_links(host, links) == links
    assert 'Traceback' not in drv.log_text()

    # Still serving: a whole container's life on a new network.
    nid, eid = 'c4' * 32, 'd5' * 32
    drv.ok('NetworkDriver.CreateNetwork', network_body(
        nid, '10.93.0.0/24', '10.93.0.1/24'))
    mac = drv.ok('NetworkDriver.CreateEndpoint', endpoint_body(
        nid, eid, '10.93.0.2/24'))['Interface']['MacAddress']
    join = drv.ok('NetworkDriver.Join', {
        'NetworkID': nid, 'EndpointID': eid, 'SandboxKey': sandbox_key})
    assert join['InterfaceName']['SrcName'] in nsmod.links(host)
    assert drv.ok('NetworkDriver.EndpointOperInfo', {
        'NetworkID': nid, 'EndpointID': eid})['Value']['mac'] == mac
    for name in ('Leave', 'DeleteEndpoint'):
        drv.ok('NetworkDriver.' + name, {'NetworkID': nid, 'EndpointID': eid})
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': nid})
    drv.ok('NetworkDriver.DeleteEndpoint', endpoint_body())
    drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': NID})
    assert backend_counts(drv) == {'networks': 0, 'endpoints': 0, 'vms': 0}
    assert nsmod.wait_links(host, {'lo'}) == {'lo'}


conftest  # noqa: B018  (fixtures)
driverproc  # noqa: B018
