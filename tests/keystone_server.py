"""A real Keystone for the tests, on loopback, with SQLite and fernet.

Keystone lives in a virtualenv of its own (``OCN_KEYSTONE_VENV``, default
``/opt/ocn-keystone``; ``tests/run-all.sh`` installs it there): its
dependencies would clash with the driver's. The harness bootstraps it in a
temporary directory, as an operator does with ``keystone-manage``, and
serves it with ``tests/keystone_wsgi.py``.

Beside the bootstrap admin (whom the fake Contrail API uses as its service
user) it makes the driver's own user in a Keystone domain of its own, with
the admin role in the project ``admin`` of the ``Default`` domain: the
driver must name Keystone's domains apart from Contrail's.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
VENV_ENV = 'OCN_KEYSTONE_VENV'
DEFAULT_VENV = '/opt/ocn-keystone'
ADMIN = 'admin'
PROJECT = 'admin'
DRIVER_DOMAIN = 'docker-hosts'
DRIVER_USER = 'ocn-driver'

CONF = """\
[DEFAULT]
log_file = {base}/keystone.log
[database]
connection = sqlite:///{base}/keystone.db
[token]
provider = fernet
[fernet_tokens]
key_repository = {base}/fernet-keys
[fernet_receipts]
key_repository = {base}/fernet-keys
[credential]
key_repository = {base}/credential-keys
[identity]
# The fewest bcrypt rounds: a token in milliseconds, not a quarter second.
password_hash_rounds = 4
[cache]
# Without a cache every token check reads the roles from SQLite (~90 ms).
enabled = true
backend = dogpile.cache.memory
"""


def venv():
    return os.environ.get(VENV_ENV) or DEFAULT_VENV


def unavailable_reason():
    if not os.path.exists(os.path.join(venv(), 'bin', 'keystone-manage')):
        return ('no Keystone in %s: tests/run-all.sh installs it there '
                '(pip install keystone in a virtualenv)' % venv())
    return None


def random_password():
    return 'Pw-' + os.urandom(9).hex()


class Keystone:
    """One Keystone process and its files; ``stop()`` removes both."""

    def __init__(self):
        self.base = tempfile.mkdtemp(prefix='ocn-keystone-')
        self.admin_password = random_password()
        self.driver_password = random_password()
        self.proc = None
        self.port = None
        self._admin_token = None

    @property
    def url(self):
        """The v3 identity URL, as services are configured with it."""
        return 'http://127.0.0.1:%d/v3' % self.port

    def _manage(self, *args):
        """Start ``keystone-manage ARGS``; ``_wait()`` for it."""
        conf = os.path.join(self.base, 'keystone.conf')
        return subprocess.Popen(
            [os.path.join(venv(), 'bin', 'keystone-manage'),
             '--config-file', conf] + list(args),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    @staticmethod
    def _wait(*procs):
        for proc in procs:
            _out, err = proc.communicate(timeout=120)
            if proc.returncode:
                raise RuntimeError('%s failed:\n%s' % (
                    ' '.join(proc.args[3:4]), err[-3000:]))

    def start(self):
        with open(os.path.join(self.base, 'keystone.conf'), 'w') as f:
            f.write(CONF.format(base=self.base))
        owner = ['--keystone-user', str(os.getuid()),
                 '--keystone-group', str(os.getgid())]
        # Independent steps at once: each one's start-up is most of it.
        keys = self._manage('fernet_setup', *owner)
        steps = [self._manage('db_sync'),
                 self._manage('credential_setup', *owner)]
        try:
            self._wait(keys)    # Keystone's WSGI app needs them to start
            self._serve()
        finally:
            self._wait(*steps)
        self._wait(self._manage(
            'bootstrap', '--bootstrap-password', self.admin_password,
            '--bootstrap-username', ADMIN,
            '--bootstrap-project-name', PROJECT,
            '--bootstrap-role-name', 'admin',
            '--bootstrap-service-name', 'keystone',
            '--bootstrap-region-id', 'RegionOne',
            '--bootstrap-public-url', self.url))
        self._make_driver_user()
        return self

    def _serve(self):
        out = open(os.path.join(self.base, 'serve.out'), 'w+')
        self.proc = subprocess.Popen(
            [os.path.join(venv(), 'bin', 'python'), '-I',
             os.path.join(HERE, 'keystone_wsgi.py'),
             os.path.join(self.base, 'keystone.conf')],
            stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT,
            cwd=self.base, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            out.seek(0)
            for line in out.read().splitlines():
                if line.startswith('PORT '):
                    self.port = int(line.split()[1])
                    out.close()
                    return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        out.seek(0)
        raise RuntimeError('Keystone did not start:\n%s' % out.read()[-3000:])

    def stop(self):
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
            self.proc.stdin.close()
            self.proc = None
        shutil.rmtree(self.base, ignore_errors=True)

    # -- the Keystone API, as an operator would use it ------------------

    def token(self, user=ADMIN, password=None, user_domain='Default'):
        """A token scoped to the project ``admin``."""
        body = {'auth': {
            'identity': {'methods': ['password'], 'password': {'user': {
                'name': user, 'domain': {'name': user_domain},
                'password': password or self.admin_password}}},
            'scope': {'project': {'name': PROJECT,
                                  'domain': {'name': 'Default'}}}}}
        res = requests.post(self.url + '/auth/tokens', json=body, timeout=10)
        res.raise_for_status()
        return res.headers['X-Subject-Token']

    def _call(self, method, path, **kwargs):
        if self._admin_token is None:
            self._admin_token = self.token()
        res = requests.request(method, self.url + path, timeout=10,
                               headers={'X-Auth-Token': self._admin_token,
                                        **kwargs.pop('headers', {})},
                               **kwargs)
        res.raise_for_status()
        return res.json() if res.content else None

    def _id(self, kind, name, **query):
        found = self._call('GET', '/%ss' % kind,
                           params=dict(query, name=name))['%ss' % kind]
        return found[0]['id']

    def _make_driver_user(self):
        domain = self._call('POST', '/domains', json={
            'domain': {'name': DRIVER_DOMAIN}})['domain']['id']
        user = self._call('POST', '/users', json={'user': {
            'name': DRIVER_USER, 'domain_id': domain,
            'password': self.driver_password}})['user']['id']
        self._call('PUT', '/projects/%s/users/%s/roles/%s' % (
            self._id('project', PROJECT), user, self._id('role', 'admin')))

    def revoke(self, token):
        """Revoke ``token``, as ``openstack token revoke`` does."""
        self._call('DELETE', '/auth/tokens',
                   headers={'X-Subject-Token': token})

    def is_valid(self, token):
        try:
            self._call('HEAD', '/auth/tokens',
                       headers={'X-Subject-Token': token})
        except requests.HTTPError:
            return False
        return True

    # -- what the fake API and the driver are configured with -----------

    def driver_options(self, password=None):
        """``[contrail]`` options of a driver that uses Keystone."""
        return {'contrail.auth_type': 'keystone',
                'contrail.auth_url': self.url,
                'contrail.admin_user': DRIVER_USER,
                'contrail.admin_password': password or self.driver_password,
                'contrail.admin_tenant': PROJECT,
                'contrail.user_domain_name': DRIVER_DOMAIN,
                'contrail.project_domain_name': 'Default'}
