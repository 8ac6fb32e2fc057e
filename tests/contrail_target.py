"""The Contrail config API the contrail tests talk to.

By default the in-process fake (:mod:`tests.fakes.contrail_api`). With
``OCN_CONTRAIL_API=HOST:PORT`` (noauth) the same tests run against a real
Contrail / Tungsten Fabric API server: how an operator qualifies a cluster
release, and how the fake is kept honest.

Either way the tests reach the API through a proxy
(:mod:`tests.fakes.api_proxy`) that counts requests and injects faults, so
the request budgets and the fault-at-every-request tests qualify a real
server too. Tests that need the fake itself (its Keystone token log, its
bulk population, its reset) are marked :data:`needs_fake` and are not
collected against a real server.

A run works in a project of its own, ``ocn-<run>``, made at the first
start, and every Docker ID the tests make carries the run's token
(:func:`docker_id`): a run on a shared server never meets the objects of
another run, even those a failed run left behind.

Given a Keystone (``tests.keystone_server.Keystone``), the fake checks every
token with it; ``driver_options()`` and ``vnc_client()`` then
authenticate.
"""

import json
import os
import secrets

import pytest
from vnc_api import exceptions as vnc_exc
from vnc_api import vnc_api

from tests.fakes import api_proxy
from tests.fakes import contrail_api
from tests import keystone_server as keystone_mod

ENV = 'OCN_CONTRAIL_API'
REAL = bool(os.environ.get(ENV))

# 8 hex digits that no other run shares.
RUN = os.environ.get('OCN_RUN_ID') or secrets.token_hex(4)
PROJECT_NAME = 'ocn-%s' % RUN
PROJECT = ['default-domain', PROJECT_NAME]
# The [DEFAULT] host of drivers whose host a test names: its
# virtual-router is the run's own.
HOST = 'ocn-host-%s' % RUN

needs_fake = pytest.mark.needs_fake


def docker_id(n, kind=0):
    """A full Docker ID (64 hex digits), unique to this run: ``n`` and
    ``kind`` tell the test's objects apart, the run token the runs."""
    return '%08x%048x%s' % (kind, n, RUN)


def sandbox_key(name='0123456789ab'):
    """A sandbox key as Docker sends it, unique to this run."""
    return '/var/run/docker/netns/%s%s' % (name[:4], RUN)


def _own_client(host, port):
    return vnc_api.VncApi(api_server_host=host, api_server_port=str(port),
                          auth_type='noauth')


# What tests make, in the order it can be deleted.
WIPED = ('floating-ip', 'instance-ip', 'virtual-machine-interface',
         'virtual-machine', 'security-group', 'floating-ip-pool',
         'virtual-network', 'network-policy', 'network-ipam',
         'virtual-router')


class RealAPI:
    """A real API server's objects, read with the stock client.

    ``objects()`` leaves out what stood before the tests began, so "no
    object left behind" holds on a cluster that others use too.
    """

    is_fake = False

    def __init__(self, where):
        self.host, _, port = where.rpartition(':')
        self.port = int(port)
        self.vnc = _own_client(self.host, self.port)
        self._before = {}
        self._kv_before = set()

    def _all(self, res_type):
        return self.vnc.resource_list(res_type, detail=True)

    def objects(self, res_type):
        before = self._before.setdefault(res_type, set())
        return [json.loads(self.vnc.obj_to_json(o))
                for o in self._all(res_type) if o.uuid not in before]

    def get(self, res_type, obj_uuid):
        try:
            obj = self.vnc._object_read(res_type, id=obj_uuid)
        except vnc_exc.NoIdError:
            return None
        return json.loads(self.vnc.obj_to_json(obj))

    def _kv_all(self):
        return {p['key']: p['value'] for p in self.vnc.kv_retrieve()
                if (p['key'] or '').startswith('opencontrail-net:')}

    def kv(self):
        return {k: v for k, v in self._kv_all().items()
                if k not in self._kv_before}

    def start(self):
        for res_type in WIPED:
            self._before[res_type] = {o.uuid for o in self._all(res_type)}
        self._kv_before = set(self._kv_all())
        return self

    def wipe(self):
        """Delete what this run made since start, as the fake's reset
        does: objects that name the run (its project, its IDs), never
        another run's on the same server."""
        for res_type in WIPED:
            for obj in self.objects(res_type):
                if RUN not in json.dumps(obj):
                    continue
                if res_type == 'virtual-machine':
                    vm = self.vnc.virtual_machine_read(
                        id=obj['uuid'], fields=['virtual_router_back_refs'])
                    for ref in vm.get_virtual_router_back_refs() or []:
                        self.vnc.ref_update('virtual-router', ref['uuid'],
                                            res_type, obj['uuid'], None,
                                            'DELETE')
                try:
                    self.vnc._object_delete(res_type, id=obj['uuid'])
                except vnc_exc.NoIdError:
                    pass
        for key in self.kv():
            if RUN in key or PROJECT_NAME in key:
                self.vnc.kv_delete(key)

    def stop(self):
        pass


class Target:
    """The API a test talks to: the proxy's controls (``requests``,
    ``count``, ``reset_requests``, ``fail_request``, ``clear_faults``,
    ``set_down``, ``timeout_hold``, ``host``/``port``) in front of the
    server's state (``objects``, ``get``, ``kv``; with the fake also
    ``tokens``, ``refused``, ``reset``, ``populate_foreign``)."""

    _PROXIED = frozenset(('requests', 'request_ids', 'count',
                          'reset_requests', 'answered',
                          'fail_request', 'fail_all', 'delay', 'clear_faults',
                          'set_down',
                          'is_down', 'host', 'port', 'url', 'timeout_hold'))

    def __init__(self, server, proxy, keystone_server=None):
        self.__dict__.update(server=server, proxy=proxy,
                             keystone_server=keystone_server,
                             is_fake=server.is_fake)

    def __getattr__(self, name):
        if name in self._PROXIED:
            return getattr(self.proxy, name)
        return getattr(self.server, name)

    def __setattr__(self, name, value):
        setattr(self.proxy if name in self._PROXIED else self.server, name,
                value)

    def stop(self):
        """Stop; on a real server, delete first what the tests left."""
        if not self.is_fake:
            self.wipe()
        self.proxy.stop()
        self.server.stop()

    def wipe(self):
        """Back to the state of the start: nothing a test made is left."""
        if self.is_fake:
            self.server.reset()
            self.server.add_project(PROJECT)
        else:
            self.server.wipe()


def _ensure_project(host, port):
    """The run's project on a real server, made by the run's first start."""
    vnc = _own_client(host, port)
    try:
        vnc.project_create(vnc_api.Project(PROJECT_NAME,
                                           vnc_api.Domain(PROJECT[0])))
    except vnc_exc.RefsExistError:
        pass


def start(keystone=None, timeout_hold=30.0, **kwargs):
    """The API for a test: a real one if the environment names one.

    With ``keystone`` the fake needs its tokens; ``api.keystone_server``
    is that Keystone (None without).
    """
    where = os.environ.get(ENV)
    if where:
        assert keystone is None, '%s names a server without Keystone' % ENV
        server = RealAPI(where)
        _ensure_project(server.host, server.port)
        server.start()
    else:
        check = None
        if keystone is not None:
            check = contrail_api.TokenCheck(
                keystone.url, keystone_mod.ADMIN, keystone.admin_password,
                keystone_mod.PROJECT)
        server = contrail_api.FakeContrailAPI(keystone=check, **kwargs)
        server.start()
        server.add_project(PROJECT)
    proxy = api_proxy.ApiProxy(server.host, server.port,
                               timeout_hold=timeout_hold).start()
    return Target(server, proxy, keystone)


def driver_options(api, **changes):
    """The ``[contrail]`` options of a driver that talks to ``api``."""
    options = {'contrail.api_server': api.host,
               'contrail.api_port': api.port,
               'contrail.auth_type': 'noauth',
               'contrail.project': PROJECT_NAME}
    if api.keystone_server is not None:
        options.update(api.keystone_server.driver_options())
    options.update(changes)
    return options


def vnc_client(api):
    """The stock client, as an operator would use it against ``api``."""
    ks = api.keystone_server
    if ks is None:
        return _own_client(api.host, api.port)
    return vnc_api.VncApi(
        api_server_host=api.host, api_server_port=str(api.port),
        auth_type='keystone', username=keystone_mod.ADMIN,
        password=ks.admin_password, tenant_name=keystone_mod.PROJECT,
        auth_host='127.0.0.1', auth_port=str(ks.port),
        auth_protocol='http', auth_url='/v3/auth/tokens',
        domain_name='Default')


def virtual_router(vnc, name=HOST):
    """The virtual-router of a compute host, as Contrail's provisioning
    makes it (named after the host): returns its uuid."""
    gsc = vnc.global_system_config_read(
        fq_name=['default-global-system-config'])
    vr = vnc_api.VirtualRouter(name, gsc,
                               virtual_router_ip_address='127.0.0.1')
    vnc.virtual_router_create(vr)
    return vr.uuid


def external_pool(vnc, network_name, project=None,
                  ipam=('default-domain', 'default-project',
                        'default-network-ipam')):
    """Someone else's router_external network with a floating-ip pool,
    made straight at the API: returns (network, pool)."""
    vn = vnc_api.VirtualNetwork(
        network_name, parent_obj=vnc.project_read(
            fq_name=list(project or PROJECT)),
        router_external=True)
    vn.add_network_ipam(vnc.network_ipam_read(fq_name=list(ipam)),
                        vnc_api.VnSubnetsType([vnc_api.IpamSubnetType(
                            subnet=vnc_api.SubnetType('203.0.113.0', 24))]))
    vnc.virtual_network_create(vn)
    pool = vnc_api.FloatingIpPool('pool', parent_obj=vn)
    vnc.floating_ip_pool_create(pool)
    return vn, pool
