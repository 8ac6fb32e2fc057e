"""A TLS front for the Contrail API, as operators put one before it
(haproxy, nginx): HTTPS on loopback, passed on in plain HTTP to the API
(the fake, or a real server), asking for a client certificate if told.
Certificates are made with the openssl command in a directory of the
test's own."""

import os
import socket
import ssl
import subprocess
import threading

from tests import relay


def openssl(*args, cwd):
    subprocess.run(['openssl'] + list(args), cwd=cwd, check=True,
                   capture_output=True)


def make_ca(directory, name):
    """A CA: ``name``.key and ``name``.pem in ``directory``."""
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
            '-subj', '/CN=%s' % name, '-keyout', name + '.key',
            '-out', name + '.pem', cwd=directory)
    return os.path.join(directory, name + '.pem')


def make_cert(directory, ca, name, ip=None):
    """A certificate ``name``.pem (key ``name``.key) signed by CA ``ca``;
    for a server, with ``ip`` as its subject alternative name."""
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj',
            '/CN=%s' % name, '-keyout', name + '.key', '-out', name + '.csr',
            cwd=directory)
    ext = os.path.join(directory, name + '.ext')
    with open(ext, 'w') as f:
        f.write('subjectAltName = IP:%s\n' % ip if ip else
                'extendedKeyUsage = clientAuth\n')
    openssl('x509', '-req', '-in', name + '.csr', '-CA', ca + '.pem',
            '-CAkey', ca + '.key', '-CAcreateserial', '-days', '2',
            '-extfile', ext, '-out', name + '.pem', cwd=directory)
    os.chmod(os.path.join(directory, name + '.key'), 0o600)
    return (os.path.join(directory, name + '.pem'),
            os.path.join(directory, name + '.key'))


class TLSFront:
    """HTTPS on 127.0.0.1:``port`` in front of ``host``:``port_to``."""

    def __init__(self, host, port_to, certfile, keyfile, client_ca=None):
        self.target = (host, port_to)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certfile, keyfile)
        if client_ca:
            self.context.verify_mode = ssl.CERT_REQUIRED
            self.context.load_verify_locations(client_ca)
        self._sock = socket.socket()
        self._sock.bind(('127.0.0.1', 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.handshakes_failed = []
        self._conns = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                raw, _addr = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,),
                             daemon=True).start()

    def _serve(self, raw):
        raw.settimeout(10)
        try:
            inner = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.handshakes_failed.append(str(exc))
            raw.close()
            return
        try:
            outer = socket.create_connection(self.target, timeout=10)
        except OSError:
            inner.close()
            return
        with self._lock:
            # Towards the client as the API server answers over TLS:
            # Nagle on, the headers and the body in records of their own.
            self._conns += relay.splice(inner, outer, nagle_inner=True)

    def close(self):
        self._sock.close()
        with self._lock:
            for sock in self._conns:
                try:
                    sock.close()
                except OSError:
                    pass
