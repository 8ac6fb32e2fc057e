"""Runs the real driver process for functional and end-to-end tests."""

import http.client
import json
import os
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


def call(socket_path, name, body=None, raw=None, timeout=60):
    """POST one libnetwork call; return (status, decoded reply)."""
    conn = UnixHTTPConnection(socket_path, timeout)
    try:
        data = raw if raw is not None else (
            b'' if body is None else json.dumps(body).encode())
        conn.request('POST', '/' + name, body=data, headers={
            'Accept': 'application/vnd.docker.plugins.v1.2+json'})
        res = conn.getresponse()
        return res.status, json.loads(res.read() or b'{}')
    finally:
        conn.close()


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
        self.config_path = os.path.join(workdir, 'driver.conf')
        self.log_path = os.path.join(workdir, 'driver.log')
        self.proc = None
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
        self.proc = subprocess.Popen(self.command(), stdout=self.log,
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError('driver exited with %s:\n%s' % (
                    self.proc.returncode, self.log_tail()))
            # "Serving" is logged once start-up is over: a signal before
            # that makes CherryPy exit with 70, by its design.
            try:
                if (self.call('Plugin.Activate')[0] == 200 and
                        'Serving ' in self.log_text()):
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

    def log_tail(self, lines=40):
        return '\n'.join(self.log_text().splitlines()[-lines:])
