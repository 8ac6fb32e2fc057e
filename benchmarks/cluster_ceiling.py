"""The API server's own ceiling for the requests of one container start.

:class:`StartTemplate` holds the requests the driver made for one whole
start and stop (recorded at the counting proxy) with what made them one
container's: the endpoint and sandbox IDs, the address, the MAC and the
uuids of the objects the start made (those it deleted again).
``instance()`` gives the same requests for a container of its own: fresh
values in each of those places, everything else (the network, the
project) as recorded.

:func:`ceiling` replays instances from a minimal client (one kept-alive
``http.client`` connection per thread, no client library) straight at
the server, at a few concurrencies, and reports the best rate; where the
server runs on this machine, also the share of one CPU it used at each
(near 1.0 for a server of one process: the rate is the server's limit,
not the client's).
"""

import http.client
import ipaddress
import re
import secrets
import threading
import time
import uuid

from opencontrail_net.backends.contrail import transport

_UUID = re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-'
                   r'[0-9a-f]{12}')
_MAC = re.compile(r'02(?::[0-9a-f]{2}){5}')


class StartTemplate:
    """The requests of one start, and the values to make fresh."""

    def __init__(self, requests, endpoint_id, sandbox_id, address):
        self.requests = list(requests)
        self.address = address
        made = set()
        macs = set()
        for method, path, body in self.requests:
            if method == 'DELETE':
                made.update(_UUID.findall(path))
            macs.update(_MAC.findall(body))
        # Longest first: no value is replaced inside a longer one.
        self.tokens = sorted([endpoint_id, sandbox_id] + sorted(made) +
                             sorted(macs), key=len, reverse=True)
        self._pattern = re.compile('|'.join(
            [re.escape(t) for t in self.tokens] +
            [r'(?<![\d.])%s(?![\d])' % re.escape(address)]))

    @staticmethod
    def _fresh(token):
        if _UUID.fullmatch(token):
            return str(uuid.uuid4())
        if _MAC.fullmatch(token):
            return '02:' + ':'.join('%02x' % b
                                    for b in secrets.token_bytes(5))
        return secrets.token_hex(len(token) // 2)

    def instance(self, address):
        """The requests for one more container, at ``address``."""
        values = {t: self._fresh(t) for t in self.tokens}
        values[self.address] = address

        def sub(text):
            return self._pattern.sub(lambda m: values[m.group(0)], text)
        return [(method, sub(path), sub(body))
                for method, path, body in self.requests]


class Addresses:
    """Addresses ``first`` .. ``first + count - 1``, round and round."""

    def __init__(self, first, count):
        self.first = ipaddress.ip_address(first)
        self.count = count
        self.next = 0
        self.lock = threading.Lock()

    def take(self):
        with self.lock:
            n = self.next
            self.next = (n + 1) % self.count
        return str(self.first + n)


def _replay(conn, template, addresses, ready, deadline, out):
    done = errors = 0
    ready.wait()
    try:
        while time.monotonic() < deadline[0]:
            for method, path, body in template.instance(addresses.take()):
                done += 1
                try:
                    conn.request(method, path, body=body.encode() or None,
                                 headers={'Content-Type': 'application/json'})
                    # The answer's headers acknowledged at once, as the
                    # driver does (the server writes the body apart).
                    transport.acknowledge_now(conn.sock)
                    res = conn.getresponse()
                    res.read()
                    failed = res.status >= 300
                except (OSError, http.client.HTTPException):
                    conn.close()
                    failed = True
                if failed:
                    # The rest of this start would fail for it.
                    errors += 1
                    break
    finally:
        conn.close()
        out.append((done, errors))


def replay(host, port, template, addresses, threads, seconds,
           cpu_seconds=None):
    """(requests/s, requests, errors, CPU share) of ``threads`` clients
    replaying starts for ``seconds``; the share is of the CPU seconds
    ``cpu_seconds()`` counts (the server's), or None without it.

    The connections are made one after the other before the clock
    starts, as the drivers' kept-alive ones were.
    """
    out = []
    ready = threading.Event()
    deadline = [0.0]
    workers = []
    for _ in range(threads):
        conn = http.client.HTTPConnection(host, port, timeout=60)
        conn.connect()
        workers.append(threading.Thread(target=_replay, args=(
            conn, template, addresses, ready, deadline, out)))
        workers[-1].start()
    used = cpu_seconds() if cpu_seconds else 0.0
    start = time.monotonic()
    deadline[0] = start + seconds
    ready.set()
    for w in workers:
        w.join()
    took = time.monotonic() - start
    share = (cpu_seconds() - used) / took if cpu_seconds else None
    done = sum(d for d, _ in out)
    return done / took, done, sum(e for _, e in out), share


def ceiling(host, port, template, addresses, seconds,
            concurrencies=(1, 4, 16, 64), cpu_seconds=None):
    """{'rate': best requests/s, 'errors': n, 'by_threads': {n: rate}},
    and with ``cpu_seconds`` (the server's CPU time so far) the share of
    one CPU the server used: 'server_cpu' at the best rate and
    'server_cpu_by_threads'."""
    by_threads = {}
    cpu = {}
    errors = 0
    for threads in concurrencies:
        rate, _done, failed, share = replay(
            host, port, template, addresses, threads, seconds, cpu_seconds)
        by_threads[threads] = rate
        cpu[threads] = share
        errors += failed
    best = max(by_threads, key=by_threads.get)
    out = {'rate': by_threads[best], 'errors': errors,
           'by_threads': by_threads}
    if cpu_seconds:
        out['server_cpu'] = cpu[best]
        out['server_cpu_by_threads'] = cpu
    return out
