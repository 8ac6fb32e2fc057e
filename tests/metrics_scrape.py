"""Scraping the driver's Prometheus metrics as Prometheus does."""

import http.client
import socket

from prometheus_client import parser


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__('localhost', timeout=5)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def scrape(address):
    """{(name, frozenset(labels)): value} of every sample served."""
    if address.startswith('unix:'):
        conn = _UnixConnection(address[5:])
    else:
        host, port = address.rsplit(':', 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request('GET', '/metrics')
        reply = conn.getresponse()
        assert reply.status == 200
        text = reply.read().decode()
    finally:
        conn.close()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in parser.text_string_to_metric_families(text)
            for s in family.samples}


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0)


def total(samples, name):
    return sum(v for (n, _labels), v in samples.items() if n == name)
