"""A Docker Engine API that answers only what the driver reads of the
engine itself (``/_ping``, ``/version``, ``/info``), with answers recorded
from an engine with no Debian package here (Docker 29 with its nftables
firewall backend), and the networks a test says Docker has (``/networks``
and ``/networks/<ID>``, without containers). For functional tests whose
subject is not Docker; never a stand-in for dockerd in end-to-end
tests."""

import http.server
import json
import os
import re
import socketserver
import tempfile
import threading

# Recorded from "docker version" / "docker info" of Docker 29 (API 1.52)
# started with --firewall-backend=nftables, trimmed to what is read.
DOCKER_29_NFTABLES = {
    'version': {'Version': '29.1.0', 'ApiVersion': '1.52',
                'MinAPIVersion': '1.44', 'Os': 'linux', 'Arch': 'amd64'},
    'info': {'ServerVersion': '29.1.0', 'Driver': 'overlay2',
             'FirewallBackend': {'Driver': 'nftables'}},
}


class _Handler(http.server.BaseHTTPRequestHandler):

    def do_GET(self):
        answers = self.server.answers
        path = re.sub(r'^/v[0-9.]+', '', self.path.split('?')[0])
        self.server.paths.append(self.path)
        nets = self.server.networks
        body = {'/_ping': 'OK', '/version': answers['version'],
                '/info': answers['info'],
                '/networks': [dict(n, Id=i) for i, n in nets.items()]
                }.get(path)
        if path.startswith('/networks/') and path[10:] in nets:
            body = dict(nets[path[10:]], Id=path[10:], Containers={})
        if body is None:
            self.send_response(404)
            body = {'message': 'page not found'}
        else:
            self.send_response(200)
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_HEAD = do_GET

    def log_message(self, *args):
        pass


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        request, _addr = super().get_request()
        return request, ('local', 0)


class FakeEngine:
    """Serves ``answers`` on a Unix socket; ``url`` is its docker_url."""

    def __init__(self, answers=DOCKER_29_NFTABLES, networks=None):
        self.dir = tempfile.mkdtemp(prefix='ocn-engine-')
        self.path = os.path.join(self.dir, 'docker.sock')
        self.url = 'unix://' + self.path
        self.server = _Server(self.path, _Handler)
        self.server.answers = answers
        self.server.paths = []
        # Network ID → {'Name': ..., 'Driver': ...}
        self.server.networks = dict(networks or {})
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)

    @property
    def paths(self):
        return list(self.server.paths)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        os.unlink(self.path)
        os.rmdir(self.dir)
