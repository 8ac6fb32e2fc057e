"""What the driver reads of Docker through the Docker Engine API.

Docker being unreachable is an error here (DockerUnavailable), never an
empty answer: callers then decide nothing rather than guess.

docker-py is imported at the first request, not with this module: the
driver serves before it asks Docker anything.
"""

import contextlib
import importlib

from opencontrail_net import exception
from opencontrail_net import ids

DockerUnavailable = exception.DockerUnavailable


def docker_py():
    """The ``docker`` package (docker-py), imported at first use."""
    return importlib.import_module('docker')


class DockerView:
    """Docker's networks of one driver and their endpoints on this host."""

    def __init__(self, url, driver_name, timeout=10):
        self.url = url
        self.driver_name = driver_name
        self.timeout = timeout

    def _client(self):
        if not self.url:
            raise DockerUnavailable(url='(none)',
                                    reason='docker_url is not set')
        return docker_py().APIClient(base_url=self.url, timeout=self.timeout)

    @contextlib.contextmanager
    def _session(self):
        """A client whose failures, but a NotFound, are DockerUnavailable."""
        docker = docker_py()
        try:
            client = self._client()
        except docker.errors.DockerException as exc:
            raise DockerUnavailable(url=self.url, reason=exc)
        try:
            yield client
        except (docker.errors.NotFound, DockerUnavailable):
            raise
        except Exception as exc:
            raise DockerUnavailable(url=self.url, reason='%s: %s' % (
                type(exc).__name__, exc))
        finally:
            client.close()

    def networks(self):
        """{network ID: {'name', 'endpoints': {endpoint ID: {...}}}}."""
        docker = docker_py()
        found = {}
        with self._session() as client:
            for net in client.networks(filters={'driver': self.driver_name}):
                if net.get('Driver') != self.driver_name:
                    continue
                try:
                    full = client.inspect_network(net['Id'])
                except docker.errors.NotFound:
                    continue    # Removed meanwhile.
                found[net['Id']] = {'name': full.get('Name'),
                                    'endpoints': _endpoints(full)}
        return found

    def sandbox_key(self, container_id):
        """The network namespace path of a running container, or None."""
        docker = docker_py()
        client = self._client()
        try:
            info = client.inspect_container(container_id)
        except docker.errors.NotFound:
            return None
        finally:
            client.close()
        if not (info.get('State') or {}).get('Running'):
            return None
        return (info.get('NetworkSettings') or {}).get('SandboxKey') or None

    def info(self):
        """The engine's ``GET /info`` body (``docker info``).

        Raises DockerUnavailable when Docker cannot say.
        """
        with self._session() as client:
            return client.info()

    def has_network(self, network_id):
        """Whether Docker has a network of ID ``network_id`` (any driver's).

        Raises DockerUnavailable when Docker cannot say.
        """
        docker = docker_py()
        with self._session() as client:
            try:
                client.inspect_network(network_id)
            except docker.errors.NotFound:
                return False
        return True

    def network(self, name):
        """(full ID, driver) of the Docker network ``name`` (a name, an ID
        or an ID's prefix, as the docker CLI takes them), or None.

        Raises DockerUnavailable when Docker cannot say.
        """
        docker = docker_py()
        with self._session() as client:
            try:
                found = client.inspect_network(name)
            except docker.errors.NotFound:
                return None
        return found.get('Id'), found.get('Driver')


def _endpoints(network):
    found = {}
    for cid, entry in (network.get('Containers') or {}).items():
        # Remote endpoints of a multi-host network are listed as "ep-...".
        if not ids.is_docker_id(cid) or not entry.get('EndpointID'):
            continue
        found[entry['EndpointID']] = {
            'container': entry.get('Name'), 'container_id': cid,
            'mac': entry.get('MacAddress') or None,
            'ipv4': entry.get('IPv4Address') or None,
            'ipv6': entry.get('IPv6Address') or None}
    return found
