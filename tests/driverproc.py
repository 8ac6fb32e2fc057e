"""Runs the real driver process for functional and end-to-end tests."""

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a Unix socket, as Docker talks to plugins."""

    def __init__(self, path, timeout=60):
        super().__init__('localhost', timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


# The driver's own line once its start is over.
_SERVING = re.compile(r'opencontrail_net\.service \[[^\]]*\] Serving ')


def started(log_text):
    """Whether a driver's log says its start is over."""
    return _SERVING.search(log_text) is not None


def call(socket_path, name, body=None, raw=None, timeout=60):
    """POST one libnetwork call on a connection of its own; return
    (status, decoded reply)."""
    conn = KeptAlive(socket_path, timeout)
    try:
        return conn.call(name, body, raw)
    finally:
        conn.close()


class KeptAlive:
    """Calls on one connection kept open between them, as dockerd makes
    them (Go's http.Transport keeps a plugin's connection alive).

    When the driver closed it while idle, the call is sent again once on
    a new connection, as Go does for a kept connection found closed.
    """

    def __init__(self, socket_path, timeout=60):
        self.socket_path = socket_path
        self.timeout = timeout
        self.conn = None
        self.connections = 0

    def call(self, name, body=None, raw=None):
        """POST one libnetwork call (``raw``: these bytes as its body);
        return (status, decoded reply)."""
        data = raw if raw is not None else (
            b'' if body is None else json.dumps(body).encode())
        for _ in range(2):
            reused = self.conn is not None
            if not reused:
                self.conn = UnixHTTPConnection(self.socket_path,
                                               self.timeout)
                self.connections += 1
            try:
                self.conn.request('POST', '/' + name, body=data, headers={
                    'Accept': 'application/vnd.docker.plugins.v1.2+json'})
                res = self.conn.getresponse()
                reply = res.read()
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError):
                self.close()
                if reused:
                    continue
                raise
            except BaseException:
                self.close()
                raise
            if res.will_close:
                self.close()
            return res.status, json.loads(reply or b'{}')
        raise AssertionError('not reached')

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def http_request(name, body=b'', method='POST', chunked=False, extra=b''):
    """The bytes of one request as Docker frames it, or chunked."""
    head = ['%s /%s HTTP/1.1' % (method, name), 'Host: plugin',
            'Accept: application/vnd.docker.plugins.v1.2+json']
    if chunked:
        head.append('Transfer-Encoding: chunked')
        step = 65536
        pieces = [body[i:i + step] for i in range(0, len(body), step)]
        body = b''.join(b'%x\r\n%s\r\n' % (len(p), p)
                        for p in pieces) + b'0\r\n\r\n'
    else:
        head.append('Content-Length: %d' % len(body))
    return '\r\n'.join(head).encode() + b'\r\n\r\n' + body + extra


class Reply:
    """One HTTP reply read off a raw socket, and whatever followed it."""

    def __init__(self, status, headers, body, rest):
        self.status = status
        self.headers = headers
        self.body = body
        # Bytes after the reply until the server closed; None if it kept
        # the connection open.
        self.rest = rest

    def json(self):
        return json.loads(self.body)


def exchange(socket_path, data, timeout=5):
    """Write all of ``data`` before reading, as Go's and Python's clients
    do, then read one reply (and, if the server closes, all that follows).
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(socket_path)
        sock.sendall(data)
        buf = b''
        while b'\r\n\r\n' not in buf:
            buf += _recv(sock)
        head, buf = buf.split(b'\r\n\r\n', 1)
        lines = head.decode('latin-1').split('\r\n')
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, v in
                   (line.split(':', 1) for line in lines[1:])}
        length = int(headers['content-length'])
        while len(buf) < length:
            buf += _recv(sock)
        body, rest = buf[:length], buf[length:]
        if headers.get('connection', '').lower() != 'close':
            return Reply(status, headers, body, None)
        while True:
            more = sock.recv(65536)
            if not more:
                return Reply(status, headers, body, rest)
            rest += more
    finally:
        sock.close()


def _recv(sock):
    data = sock.recv(65536)
    if not data:
        raise ConnectionError('closed before a whole reply')
    return data


class DriverProcess:
    """One opencontrail-net-driver process with its own config file."""

    def __init__(self, workdir, socket_path, netns=None, **options):
        self.workdir = workdir
        self.socket_path = socket_path
        self.netns = netns
        self.options = dict(options)
        self.options.setdefault('state_path', os.path.join(workdir, 'state'))
        self.options.setdefault('debug', 'true')
        # No Docker Engine API unless a test gives its dockerd's.
        self.options.setdefault('docker_url', '')
        # nftables rules and forwarding only in a namespace the test made,
        # never in the machine's own.
        self.options.setdefault('bridge.firewall',
                                'true' if netns else 'false')
        self.config_path = os.path.join(workdir, 'driver.conf')
        self.log_path = os.path.join(workdir, 'driver.log')
        self.log_start = 0
        self.proc = None
        # Variables added to this process's environment for the driver's.
        self.env = {}
        self.write_config()

    def write_config(self):
        groups = {'DEFAULT': {'socket_path': self.socket_path}}
        for key, value in self.options.items():
            group, _, name = key.rpartition('.')
            groups.setdefault(group or 'DEFAULT', {})[name] = value
        with open(self.config_path, 'w') as f:
            for group, values in groups.items():
                f.write('[%s]\n' % group)
                for name, value in values.items():
                    f.write('%s = %s\n' % (name, value))

    def command(self):
        cmd = [sys.executable, '-m', 'opencontrail_net.cmd.driver',
               '--config-file', self.config_path]
        if self.netns:
            cmd = ['ip', 'netns', 'exec', self.netns] + cmd
        return cmd

    def start(self, wait=True):
        assert self.proc is None
        self.log = open(self.log_path, 'a')
        # Where this process's lines begin: the log outlives restarts.
        self.log_start = self.log.tell()
        self.proc = subprocess.Popen(self.command(), stdout=self.log,
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True,
                                     env=dict(os.environ, **self.env))
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError('driver exited with %s:\n%s' % (
                    self.proc.returncode, self.log_tail()))
            # "Serving" is logged once the start behind the socket is
            # over (CherryPy's "ENGINE Serving on socket file" is not it).
            try:
                if (self.call('Plugin.Activate')[0] == 200 and
                        started(self.log_since_start())):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError('driver did not answer:\n' + self.log_tail())

    def call(self, name, body=None, **kwargs):
        return call(self.socket_path, name, body, **kwargs)

    def ok(self, name, body=None):
        status, reply = self.call(name, body)
        assert status == 200, (name, status, reply)
        return reply

    def kill(self, sig=signal.SIGKILL):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
        try:
            code = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait()
        self.proc = None
        self.log.close()
        return code

    def stop(self):
        return self.kill(signal.SIGTERM)

    def restart(self):
        self.kill()
        return self.start()

    def log_text(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except FileNotFoundError:
            return ''

    def log_since_start(self):
        """What this process has logged (since the last start)."""
        try:
            with open(self.log_path, 'rb') as f:
                f.seek(self.log_start)
                return f.read().decode(errors='replace')
        except FileNotFoundError:
            return ''

    def log_tail(self, lines=40):
        return '\n'.join(self.log_text().splitlines()[-lines:])
