"""The Contrail config API the contrail tests talk to.

By default the in-process fake (:mod:`tests.fakes.contrail_api`). With
``OCN_CONTRAIL_API=HOST:PORT`` (noauth) the same tests run against a real
Contrail / Tungsten Fabric API server: how an operator qualifies a cluster
release, and how the fake is kept honest. Tests that need the fake's test
controls (fault injection, request counts, outages) skip there.

Given a Keystone (``tests.keystone_server.Keystone``), the fake checks every
token with it; ``driver_options()`` and ``vnc_client()`` then
authenticate.
"""

import os

import pytest
from vnc_api import exceptions as vnc_exc
from vnc_api import vnc_api

from tests.fakes import contrail_api
from tests import keystone_server as keystone_mod

ENV = 'OCN_CONTRAIL_API'

needs_fake = pytest.mark.skipif(
    bool(os.environ.get(ENV)),
    reason='needs the in-process fake API (faults, request counts); %s '
    'points at a real server' % ENV)


class RealAPI:
    """A real API server, seen through the fake's read-only controls.

    ``objects()`` leaves out what stood before the tests began, so "no
    object left behind" holds on a cluster that others use too.
    """

    def __init__(self, where):
        self.host, _, port = where.rpartition(':')
        self.port = int(port)
        self.vnc = vnc_api.VncApi(api_server_host=self.host,
                                  api_server_port=str(self.port),
                                  auth_type='noauth')
        self._before = {}

    def _all(self, res_type):
        return self.vnc.resource_list(res_type, detail=True)

    def objects(self, res_type):
        if res_type not in self._before:
            self._before[res_type] = set()
        return [o.serialize_to_json() for o in self._all(res_type)
                if o.uuid not in self._before[res_type]]

    def get(self, res_type, obj_uuid):
        try:
            obj = self.vnc._object_read(res_type, id=obj_uuid)
        except vnc_exc.NoIdError:
            return None
        return obj.serialize_to_json()

    def kv(self):
        return {p['key']: p['value'] for p in self.vnc.kv_retrieve()
                if p['key'].startswith('opencontrail-net:')}

    def start(self):
        for res_type in ('virtual-network', 'virtual-machine-interface',
                         'instance-ip', 'virtual-machine', 'security-group'):
            self._before[res_type] = {o.uuid for o in self._all(res_type)}
        return self

    def stop(self):
        pass


def start(keystone=None, **kwargs):
    """The API for a test: a real one if the environment names one.

    With ``keystone`` the fake needs its tokens; ``api.keystone_server``
    is that Keystone (None without).
    """
    where = os.environ.get(ENV)
    if where:
        if keystone is not None:
            pytest.skip('%s names a server without Keystone' % ENV)
        api = RealAPI(where)
        api.keystone_server = None
        return api.start()
    check = None
    if keystone is not None:
        check = contrail_api.TokenCheck(
            keystone.url, keystone_mod.ADMIN, keystone.admin_password,
            keystone_mod.PROJECT)
    api = contrail_api.FakeContrailAPI(keystone=check, **kwargs)
    api.keystone_server = keystone
    api.start()
    return api


def driver_options(api, **changes):
    """The ``[contrail]`` options of a driver that talks to ``api``."""
    options = {'contrail.api_server': api.host,
               'contrail.api_port': api.port,
               'contrail.auth_type': 'noauth'}
    if api.keystone_server is not None:
        options.update(api.keystone_server.driver_options())
    options.update(changes)
    return options


def vnc_client(api):
    """The stock client, as an operator would use it against ``api``."""
    ks = api.keystone_server
    if ks is None:
        return vnc_api.VncApi(api_server_host=api.host,
                              api_server_port=str(api.port),
                              auth_type='noauth')
    return vnc_api.VncApi(
        api_server_host=api.host, api_server_port=str(api.port),
        auth_type='keystone', username=keystone_mod.ADMIN,
        password=ks.admin_password, tenant_name=keystone_mod.PROJECT,
        auth_host='127.0.0.1', auth_port=str(ks.port),
        auth_protocol='http', auth_url='/v3/auth/tokens',
        domain_name='Default')


def external_pool(vnc, network_name, project=('default-domain', 'admin'),
                  ipam=('default-domain', 'default-project',
                        'default-network-ipam')):
    """Someone else's router_external network with a floating-ip pool,
    made straight at the API: returns (network, pool)."""
    vn = vnc_api.VirtualNetwork(
        network_name, parent_obj=vnc.project_read(fq_name=list(project)),
        router_external=True)
    vn.add_network_ipam(vnc.network_ipam_read(fq_name=list(ipam)),
                        vnc_api.VnSubnetsType([vnc_api.IpamSubnetType(
                            subnet=vnc_api.SubnetType('203.0.113.0', 24))]))
    vnc.virtual_network_create(vn)
    pool = vnc_api.FloatingIpPool('pool', parent_obj=vn)
    vnc.floating_ip_pool_create(pool)
    return vn, pool
