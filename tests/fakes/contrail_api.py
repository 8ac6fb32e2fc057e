"""A fake Contrail / Tungsten Fabric config API server, for tests.

An HTTP server (``http.server.ThreadingHTTPServer`` in a daemon thread, JSON
in and out) that the real client ``vnc_api.vnc_api.VncApi`` (PyPI
``contrail-api-client``) talks to unmodified.  The object schema (types,
parent types, ref/back-ref/children fields, derived children, list and map
properties) is read from ``vnc_api.gen.resource_common``, the same generated
schema the real server uses, so every type of the schema is stored
generically; the types a Docker driver uses get the server's own rules:

* create: server uuid unless the caller gives one (``400`` if not a canonical
  uuid, ``409 "<u> already exists with fq_name: ..."`` if taken); duplicate
  fq_name ``409 "[...] already exists with uuid: <u>"``; missing parent
  ``404`` (observed; the TF source says 400); unknown ref ``400``; the server
  adds ``id_perms`` (``created``/``last_modified``), ``perms2`` and
  ``display_name`` = name.
* read: unknown uuid or a uuid of another type ``404``; refs carry ``to``,
  ``uuid``, ``attr``, ``href``; back-refs (``<type>_back_refs``) and children
  (``<type>s``) unless ``exclude_back_refs``/``exclude_children`` are given
  (presence counts, as in TF); with ``fields=`` only those (plus fq_name,
  uuid, parent, id_perms, perms2).
* refs: on create the ``to`` (fq_name) names the object, whatever the
  uuid beside it says (see ``_resolve_refs``); an update stores a ref
  with a uuid as it comes.
* update (PUT): fields given replace the stored ones (ref lists too, ``null``
  removes).
* delete: ``409 "Delete when children still present: [hrefs]"`` /
  ``"Delete when resource still referred: [hrefs]"``; derived children (a
  VN's routing-instance) do not block and go with their parent.
* virtual-network: ``virtual_network_network_id`` allocated (lowest free
  from 1; ``403`` if the caller sets or changes it); a child routing-instance
  ``fq_name + [name]``; route targets checked (``target:<asn|ip>:<n>``, and
  for the global ASN 64512 not in 8000000..16777216: ``400``); every ipam
  subnet gets ``subnet_uuid``, ``default_gateway``, ``dns_server_address``
  (rules in ``_Subnet``); subnets that overlap ``400``; removing a subnet that
  still has addresses ``409 "Cannot Delete IP Block, IP(x) is in use"``;
  changing a subnet's gateway ``400``.
* virtual-machine-interface: without ``virtual_network_refs`` ``500`` (the
  real server's KeyError); MAC ``02:`` + first five bytes of the uuid unless
  given, in ``virtual_machine_interface_mac_addresses``.
* instance-ip: address allocation per subnet of the referenced VN, see
  ``_Subnet``; ``subnet_uuid`` recorded; a requested address that is taken,
  or is the DNS/network/broadcast address, ``409 "IP address already in
  use"``; the gateway address ``400 "Gateway IP cannot be used by VM port"``
  when the iip's interface refers to a virtual-machine, else accepted (TF
  ``instance_ip.py``: router ports may hold it); outside every subnet, or
  subnet exhausted, ``400``; address change on PUT ``400``.
* floating-ip-pool: a child of a virtual-network (accepted on any, as by
  the server: ``router_external`` is Neutron's rule, not the API
  server's).
* floating-ip (in a pool; TF ``floating_ip.py``): without ``project_refs``
  the project of its fq_name; its address allocated from the pool's
  network like an instance-ip's (and counted as used there); an address
  asked that is taken ``409 "IP address already in use"``; exhausted (or
  no subnet) ``500`` with the allocator's message, as the server wraps
  it; the address stays what it was on PUT (not checked against
  the server). Its ``virtual_machine_interface``
  ref keeps the interface from being deleted (``409``), as every ref does.
* actions: ``/fqname-to-id``, ``/id-to-fqname``, ``/ref-update``,
  ``/ref-relax-for-delete``, ``/useragent-kv``, ``/prop-collection-update``,
  ``/prop-collection-get``, ``/list-bulk-collection``,
  ``/virtual-network/<id>/ip-alloc|ip-free|subnet-ip-count``.

* id_perms: ``creator`` is taken at create only; an update changes only
  ``enable`` and ``description`` (TF ``_ensure_id_perms_present``).
* route targets: the ASN must be 1..0xFFFF unless the global-system-config
  has ``enable_4byte_as`` (``400 "ASN out of range, should be between
  1-0xFFFF"``); after a 4-byte ASN the number must be at most 0xFFFF; in
  the global-system-config's ``autonomous_system`` the numbers
  8000000..16777216 are refused.
* security-group: ``security_group_id`` allocated from 8000001 (``403`` if
  the caller sets it), every rule gets a ``rule_uuid`` unless given; a
  rule needs ``local`` on one side, a known protocol, ports 0..65535 in
  order, and addresses of its ethertype (``400``).

Keystone (``keystone=TokenCheck(...)``): as keystonemiddleware in front of
the real server, every request, the homepage too, needs an ``X-Auth-Token``
that Keystone confirms (``GET /v3/auth/tokens``); else ``401
"Authentication required"`` with a ``WWW-Authenticate`` header, or ``503``
when Keystone does not answer. Each request asks Keystone again, so a
revoked token fails at its next use (keystonemiddleware caches tokens for
minutes; a real server may accept a revoked one that long).

Not modelled: RBAC/quotas, flat-subnet IPAMs and vrouter
allocation pools, ``floating_ip_pool_subnets``, alias IPs, floating IPs
under an instance-ip, the ``default`` security group
Neutron or kube-manager make per project, route-target objects, the schema
transformer, tags, ETags, pagination.

Test controls: ``start()``, ``stop()``, ``port``, ``url``, ``tokens``
and ``refused`` (Keystone mode), ``set_down()``, ``objects()``, ``get()``,
``kv()``, ``reset()``, ``add_project()``, ``populate_foreign()``. Request
counts and injected faults are the proxy's (:mod:`tests.fakes.api_proxy`),
which stands in front of this fake and of a real server alike.
"""

import copy
import datetime
import ipaddress
import json
import pprint
import threading
import traceback
import uuid as uuidlib
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import requests

from vnc_api.gen import resource_common as _schema
from vnc_api.gen import resource_xsd as _xsd
from vnc_api.gen.vnc_api_client_gen import all_resource_types

from tests.fakes import httpfake

GLOBAL_ASN = 64512
_RT_RESERVED = (8000000, 1 << 24)   # contrail's own targets, 2-byte ASN
_SG_ID_BASE = 8000000
_PROTOCOLS = {'any', 'icmp', 'tcp', 'udp', 'icmp6'} | {
    str(n) for n in range(256)}
_BASIC_KEYS = ('uuid', 'fq_name', 'parent_type', 'parent_uuid')
_ACTIONS = [
    ('/fqname-to-id', 'name-to-id', 'POST'),
    ('/id-to-fqname', 'id-to-name', 'POST'),
    ('/ref-update', 'ref-update', 'POST'),
    ('/ref-relax-for-delete', 'ref-relax-for-delete', 'POST'),
    ('/useragent-kv', 'useragent-keyvalue', 'POST'),
    ('/prop-collection-update', 'prop-collection-update', 'POST'),
    ('/prop-collection-get', 'prop-collection-get', 'GET'),
    ('/list-bulk-collection', 'list-bulk-collection', 'POST'),
    ('/virtual-network/%s/ip-alloc', 'virtual-network-ip-alloc', 'POST'),
    ('/virtual-network/%s/ip-free', 'virtual-network-ip-free', 'POST'),
    ('/virtual-network/%s/subnet-ip-count',
     'virtual-network-subnet-ip-count', 'POST'),
]
_PREPOPULATED = [
    ('global-system-config', ['default-global-system-config'],
     {'autonomous_system': GLOBAL_ASN}),
    ('global-vrouter-config',
     ['default-global-system-config', 'default-global-vrouter-config'], {}),
    ('domain', ['default-domain'], {}),
    ('project', ['default-domain', 'default-project'], {}),
    ('network-ipam',
     ['default-domain', 'default-project', 'default-network-ipam'], {}),
    ('network-ipam',
     ['default-domain', 'default-project', 'service-chain-flat-ipam'], {}),
    # A fresh server's networks: none has a subnet.
    ('virtual-network',
     ['default-domain', 'default-project', 'default-virtual-network'], {}),
    ('virtual-network', ['default-domain', 'default-project', 'ip-fabric'],
     {}),
    ('virtual-network',
     ['default-domain', 'default-project', '__link_local__'], {}),
]
_TYPES = frozenset(all_resource_types)


class ApiError(Exception):
    """An HTTP error answer of the server (text body, like TF's)."""

    def __init__(self, status, message):
        super(ApiError, self).__init__(message)
        self.status = status
        self.message = message


def _canon(res_type):
    """'virtual_network' or 'virtual-network' -> 'virtual-network'."""
    return (res_type or '').replace('_', '-')


def _under(res_type):
    return res_type.replace('-', '_')


def _cls(res_type):
    name = ''.join(w.capitalize() for w in res_type.split('-'))
    return getattr(_schema, name, None)


def _now():
    return datetime.datetime.utcnow().isoformat()


def _fmt(fq_name):
    return pprint.pformat(list(fq_name))


def _check_uuid(text):
    try:
        return str(uuidlib.UUID(text)) == text
    except (TypeError, ValueError, AttributeError):
        return False


def _ip(text):
    if text is None or text in ('', 'None'):
        return None
    return ipaddress.ip_address(str(text))


def _boolarg(query, name):
    return 'true' in str(query.get(name, 'false')).lower()


def _split(value):
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [v for v in str(value).split(',') if v]


# --------------------------------------------------------------------------
# address management

class _Subnet(object):
    """One ipam subnet of a virtual network, as the allocator sees it.

    Rules (TF ``vnc_addr_mgmt.Subnet`` and observation):

    * gateway: the one given, else ``first + 1`` with ``addr_from_start``,
      else ``last - 1`` (.254 of a /24; for IPv6 the same rule: the last
      address of the prefix minus one).
    * DNS service address: the one given only while DHCP is off
      (``enable_dhcp`` False) or a ``dhcp_option_list`` is set; otherwise
      re-defaulted to ``first + 2`` with ``addr_from_start``, else
      ``last - 2`` (.253 of a /24; with an explicit gateway it stays
      ``last - 2``, as in the TF source).
    * pools: ``allocation_pools`` or ``[first, last - 1]``; the network
      address, the last address, and gateway/DNS (when inside a pool) are
      never allocated.
    * allocation counts down from the top of the pools, or up from the bottom
      with ``addr_from_start``; a freed address is reused.
    """

    def __init__(self, ipam_subnet):
        sn = ipam_subnet['subnet']
        self.name = '%s/%s' % (sn['ip_prefix'], sn['ip_prefix_len'])
        self.net = _net_of(ipam_subnet)
        self.version = self.net.version
        self.uuid = ipam_subnet.get('subnet_uuid')
        self.from_start = bool(ipam_subnet.get('addr_from_start'))
        self.gw = _ip(ipam_subnet.get('default_gateway'))
        self.dns = _ip(ipam_subnet.get('dns_server_address'))
        first = int(self.net.network_address)
        last = int(self.net.broadcast_address)
        pools = []
        for pool in ipam_subnet.get('allocation_pools') or []:
            pools.append((int(_ip(pool['start'])), int(_ip(pool['end']))))
        self.pools = sorted(pools) or [(first, last - 1)]
        self.excluded = {first, last}
        for addr in (self.gw, self.dns):
            if addr is not None and self.in_pools(addr):
                self.excluded.add(int(addr))

    def __contains__(self, addr):
        return addr.version == self.version and addr in self.net

    def in_pools(self, addr):
        return addr.version == self.version and any(
            s <= int(addr) <= e for s, e in self.pools)

    def is_reserved(self, addr):
        return int(addr) in self.excluded

    def first_free(self, used):
        taken = self.excluded | {int(a) for a in used if a in self}
        pools = self.pools if self.from_start else reversed(self.pools)
        for start, end in pools:
            if self.from_start:
                rng = range(start, end + 1)
            else:
                rng = range(end, start - 1, -1)
            for value in rng:
                if value not in taken:
                    return _addr(self.version, value)
        return None


def _addr(version, value):
    if version == 4:
        return ipaddress.IPv4Address(value)
    return ipaddress.IPv6Address(value)


def _net_of(ipam_subnet):
    sn = ipam_subnet['subnet']
    return ipaddress.ip_network(
        '%s/%s' % (sn['ip_prefix'], sn.get('ip_prefix_len')), strict=False)


def _default_gw(net, from_start):
    if from_start:
        return _addr(net.version, int(net.network_address) + 1)
    return _addr(net.version, int(net.broadcast_address) - 1)


def _default_dns(net, from_start):
    if from_start:
        return _addr(net.version, int(net.network_address) + 2)
    return _addr(net.version, int(net.broadcast_address) - 2)


def _dhcp_options(ipam_subnet):
    opts = ipam_subnet.get('dhcp_option_list')
    if isinstance(opts, dict):
        opts = opts.get('dhcp_option')
    return bool(opts)


def _vn_ipam_subnets(vn):
    """The (ipam_subnet dict) list of a VN with real prefixes, in order."""
    out = []
    for ref in vn.get('network_ipam_refs') or []:
        for sn in ((ref.get('attr') or {}).get('ipam_subnets') or []):
            if (sn.get('subnet') or {}).get('ip_prefix'):
                out.append(sn)
    return out


def _check_sg_rule(rule):
    """A security-group rule as the API server checks it (TF
    ``SecurityGroupServer``): one side local, a protocol, ports in order,
    addresses of the rule's ethertype. Gives each rule its uuid."""
    rule.setdefault('rule_uuid', None)
    if not rule['rule_uuid']:
        rule['rule_uuid'] = str(uuidlib.uuid4())
    sides = (rule.get('src_addresses') or []) + (
        rule.get('dst_addresses') or [])
    if not any(a.get('security_group') == 'local' for a in sides):
        raise ApiError(400, 'At least one of source or destination '
                       'addresses must be "local"')
    if str(rule.get('protocol', '')).lower() not in _PROTOCOLS:
        raise ApiError(400, 'Rule with invalid protocol : %s'
                       % rule.get('protocol'))
    for port in (rule.get('src_ports') or []) + (
            rule.get('dst_ports') or []):
        start, end = port.get('start_port'), port.get('end_port')
        if not (isinstance(start, int) and isinstance(end, int) and (
                -1 <= start <= end <= 65535)):
            raise ApiError(400, 'Invalid port range %s' % port)
    version = {'IPv4': 4, 'IPv6': 6}.get(rule.get('ethertype'))
    if version is None:
        raise ApiError(400, 'Invalid ethertype %s' % rule.get('ethertype'))
    for addr in sides:
        subnet = addr.get('subnet')
        if subnet and ipaddress.ip_address(
                subnet['ip_prefix']).version != version:
            raise ApiError(400, 'Rule subnet %s doesn\'t match ethertype '
                           '%s' % (subnet['ip_prefix'], rule['ethertype']))
        group = addr.get('security_group')
        if group not in (None, 'local', 'any') and len(
                str(group).split(':')) != 3:
            raise ApiError(400, 'Invalid security group %s' % group)


# --------------------------------------------------------------------------
# the configuration database

class _ConfigDB(object):
    """Objects, indexes and the per-type rules.  Callers hold the lock."""

    def __init__(self, base_url):
        self.base_url = base_url
        self.objs = {}        # uuid -> stored dict
        self.types = {}       # uuid -> res_type
        self.fq_index = {}    # (res_type, tuple(fq_name)) -> uuid
        self.kv = {}
        self.relaxed = set()  # (from uuid, to uuid)
        self.ip_reservations = {}  # vn uuid -> set of ip addresses
        for res_type, fq_name, props in _PREPOPULATED:
            body = dict(props, fq_name=list(fq_name))
            self.create(res_type, body)
        self.prepopulated = frozenset(self.objs)

    # -- helpers ---------------------------------------------------------

    def href(self, res_type, obj_uuid):
        return '%s/%s/%s' % (self.base_url, res_type, obj_uuid)

    def typed(self, res_type, obj_uuid):
        if self.types.get(obj_uuid) != res_type:
            raise ApiError(404, 'No %s object found for id %s'
                           % (res_type, obj_uuid))
        return self.objs[obj_uuid]

    def lookup(self, res_type, fq_name):
        return self.fq_index.get((res_type, tuple(fq_name or ())))

    def _refs_to(self, target):
        """(referrer uuid, ref field, ref) of every ref to ``target``."""
        for obj_uuid, obj in self.objs.items():
            for field, refs in obj.items():
                if field.endswith('_refs') and isinstance(refs, list):
                    for ref in refs:
                        if ref.get('uuid') == target:
                            yield obj_uuid, field, ref

    def _children(self, parent):
        return [u for u, o in self.objs.items()
                if o.get('parent_uuid') == parent]

    def _resolve_refs(self, body, fields, oper):
        """Refs as the server takes them (observed, TF 2005+).

        On create a ref names its object by ``to`` (the fq_name), and the
        ``to`` wins: a right uuid beside a wrong ``to`` refers to the
        object ``to`` names. No ``to``: ``500 KeyError``; a ``to`` that
        names nothing: ``500`` (``400`` when no uuid came with it); a
        uuid given that is no object of the ref's type: ``404``.
        On update a ref with a uuid is stored as given, unchecked; one
        with only a ``to`` must name an object (``400``).
        """
        for field in fields:
            refs = body.get(field)
            if refs is None:
                continue
            ref_type = _canon(field[:-len('_refs')])
            resolved = []
            for ref in refs:
                to, given = ref.get('to'), ref.get('uuid')
                if oper == 'update' and given:
                    known = self.objs.get(given)
                    resolved.append({'to': list(to or (
                        known['fq_name'] if known else [])),
                        'uuid': given, 'attr': ref.get('attr')})
                    continue
                if to is None:
                    raise ApiError(500, "KeyError: 'to'")
                target = self.lookup(ref_type, to)
                if target is None:
                    if given:
                        raise ApiError(
                            500, 'vnc_api.exceptions.NoIdError: Unknown id:'
                            ' %s %s' % (_under(ref_type), ':'.join(to)))
                    raise ApiError(400, 'Unknown reference in resource %s '
                                   '%s.' % (oper, body))
                if given and self.types.get(given) != ref_type:
                    raise ApiError(404, 'Unknown id: %s' % given)
                resolved.append({'to': list(self.objs[target]['fq_name']),
                                 'uuid': target, 'attr': ref.get('attr')})
            body[field] = resolved

    @staticmethod
    def _ref_fields(body):
        return [k for k in body if k.endswith('_refs')]

    def _stamp(self, obj, created=True):
        now = _now()
        perms = obj.get('id_perms') or {}
        val = uuidlib.UUID(obj['uuid']).int
        ids = {'uuid_mslong': val >> 64, 'uuid_lslong': val & ((1 << 64) - 1)}
        base = {'enable': True, 'user_visible': True, 'description': None,
                'creator': None, 'created': now, 'last_modified': now,
                'permissions': {'owner': 'cloud-admin', 'owner_access': 7,
                                'group': 'cloud-admin-group',
                                'group_access': 7, 'other_access': 7}}
        if created:
            base.update({k: v for k, v in perms.items() if v is not None})
            base.update(created=now, uuid=ids)
        else:
            base = dict(perms)
        base['last_modified'] = now
        obj['id_perms'] = base

    # -- CRUD ------------------------------------------------------------

    def create(self, res_type, body):
        obj = copy.deepcopy(body)
        cls = _cls(res_type)
        fq_name = obj.get('fq_name')
        if not fq_name:
            raise ApiError(400, 'Bad Request, no fq_name in POST body')
        fq_name = obj['fq_name'] = [str(n) for n in fq_name]
        existing = self.lookup(res_type, fq_name)
        if existing:
            raise ApiError(409, '%s already exists with uuid: %s'
                           % (_fmt(fq_name), existing))
        parent_type = obj.pop('parent_type', None)
        if parent_type == 'config-root':
            parent_type = None
        allowed = list(getattr(cls, 'parent_types', None) or [])
        if parent_type:
            if allowed and parent_type not in allowed:
                raise ApiError(400, 'Invalid parent type: %s. Allowed types:'
                               ' %s' % (parent_type, allowed))
        elif len(allowed) > 1 and 'config-root' not in allowed:
            raise ApiError(400, 'Missing parent type: %s. Allowed types: %s'
                           % (parent_type, allowed))
        elif len(allowed) == 1 and allowed[0] != 'config-root':
            parent_type = allowed[0]
        if not parent_type and len(fq_name) != 1:
            raise ApiError(400, 'Invalid fq-name of an object with no '
                           'parent: %s' % fq_name)
        if parent_type and len(fq_name) < 2:
            raise ApiError(400, 'Invalid fq-name for object with parent_type'
                           ' %s: %s' % (parent_type, fq_name))
        obj_uuid = obj.get('uuid')
        if obj_uuid:
            if not _check_uuid(obj_uuid):
                raise ApiError(400, 'Invalid UUID format: %s' % obj_uuid)
            if obj_uuid in self.objs:
                raise ApiError(409, '%s already exists with fq_name: %s' % (
                    obj_uuid, _fmt(self.objs[obj_uuid]['fq_name'])))
        else:
            obj_uuid = obj['uuid'] = str(uuidlib.uuid4())
        obj.pop('parent_uuid', None)
        if parent_type:
            parent = self.lookup(parent_type, fq_name[:-1])
            if not parent:
                raise ApiError(404, 'Parent %s type %s does not exist'
                               % (_fmt(fq_name[:-1]), parent_type))
            obj['parent_type'] = parent_type
            obj['parent_uuid'] = parent
        self._resolve_refs(obj, self._ref_fields(obj), 'create')
        for key in [k for k, v in obj.items() if v is None]:
            del obj[key]
        for key in ('href', 'name', 'parent_href'):
            obj.pop(key, None)
        self._stamp(obj)
        obj.setdefault('perms2', {'owner': 'cloud-admin', 'owner_access': 7,
                                  'global_access': 0, 'share': []})
        obj.setdefault('display_name', fq_name[-1])
        hook = getattr(self, '_pre_create_' + _under(res_type), None)
        if hook:
            hook(obj)
        self.objs[obj_uuid] = obj
        self.types[obj_uuid] = res_type
        self.fq_index[(res_type, tuple(fq_name))] = obj_uuid
        hook = getattr(self, '_post_create_' + _under(res_type), None)
        if hook:
            hook(obj)
        rsp = {'name': fq_name[-1], 'fq_name': fq_name, 'uuid': obj_uuid,
               'href': self.href(res_type, obj_uuid)}
        if parent_type:
            rsp.update(parent_type=parent_type, parent_uuid=obj['parent_uuid'],
                       parent_href=self.href(parent_type, obj['parent_uuid']))
        return {res_type: rsp}

    def update(self, res_type, obj_uuid, body):
        old = self.typed(res_type, obj_uuid)
        body = copy.deepcopy(body)
        for key in _BASIC_KEYS + ('href', 'name', 'parent_href'):
            body.pop(key, None)
        for key in [k for k in body
                    if k.endswith('_back_refs') or k in self._child_fields(
                        res_type)]:
            del body[key]
        self._resolve_refs(body, self._ref_fields(body), 'update')
        new = copy.deepcopy(old)
        for key, value in body.items():
            if key == 'id_perms' and isinstance(value, dict):
                new['id_perms'] = dict(new['id_perms'], **{
                    k: v for k, v in value.items()
                    if k in ('enable', 'description')})
            elif value is None:
                new.pop(key, None)
            else:
                new[key] = value
        hook = getattr(self, '_pre_update_' + _under(res_type), None)
        if hook:
            hook(old, new, body)
        self._stamp(new, created=False)
        self.objs[obj_uuid] = new
        return {res_type: {'uuid': obj_uuid,
                           'href': self.href(res_type, obj_uuid)}}

    @staticmethod
    def _child_fields(res_type):
        cls = _cls(res_type)
        return set(getattr(cls, 'children_fields', ()) or ())

    def _is_derived_child(self, parent_type, child_uuid):
        child_type = self.types[child_uuid]
        field = _under(child_type) + 's'
        spec = (getattr(_cls(parent_type), 'children_field_types', {}) or {}
                ).get(field)
        derived = bool(spec and spec[1])
        default = self.objs[child_uuid]['fq_name'][-1] == \
            'default-' + child_type
        return derived or default

    def delete(self, res_type, obj_uuid):
        obj = self.typed(res_type, obj_uuid)
        blocking = [u for u in self._children(obj_uuid)
                    if not self._is_derived_child(res_type, u)]
        if blocking:
            raise ApiError(409, 'Delete when children still present: %s' % [
                self.href(self.types[u], u) for u in blocking])
        backref_types = getattr(_cls(res_type), 'backref_field_types', {})
        referrers = []
        for ref_uuid, _field, _ref in self._refs_to(obj_uuid):
            field = _under(self.types[ref_uuid]) + '_back_refs'
            spec = backref_types.get(field)
            if spec and spec[2]:
                continue
            if (ref_uuid, obj_uuid) in self.relaxed:
                continue
            if ref_uuid not in referrers:
                referrers.append(ref_uuid)
        if referrers:
            raise ApiError(409, 'Delete when resource still referred: %s' % [
                self.href(self.types[u], u) for u in referrers])
        hook = getattr(self, '_pre_delete_' + _under(res_type), None)
        if hook:
            hook(obj)
        self._remove(obj_uuid)

    def _remove(self, obj_uuid):
        for child in self._children(obj_uuid):
            self._remove(child)
        for ref_uuid, field, ref in list(self._refs_to(obj_uuid)):
            self.objs[ref_uuid][field].remove(ref)
        obj = self.objs.pop(obj_uuid)
        res_type = self.types.pop(obj_uuid)
        self.fq_index.pop((res_type, tuple(obj['fq_name'])), None)
        self.relaxed = {p for p in self.relaxed if obj_uuid not in p}
        self.ip_reservations.pop(obj_uuid, None)

    # -- read / list ---------------------------------------------------

    def render(self, obj_uuid, fields=None, back_refs=True, children=True,
               hrefs=True, detail=True):
        """The server's view of one object.

        ``fields``: None for all props and refs, else the requested names.
        ``detail``: False keeps only uuid, fq_name, href and ``fields``
        (the non-detail list form).
        """
        res_type = self.types[obj_uuid]
        obj = copy.deepcopy(self.objs[obj_uuid])
        if fields is not None:
            fields = set(fields)
            keep = set(_BASIC_KEYS) | {'id_perms', 'perms2'} if detail \
                else {'uuid', 'fq_name'}
            obj = {k: v for k, v in obj.items() if k in keep | fields}
            back_refs = any(f.endswith('_back_refs') for f in fields)
            children = bool(fields & self._child_fields(res_type))
        if back_refs:
            for ref_uuid, _field, ref in self._refs_to(obj_uuid):
                name = _under(self.types[ref_uuid]) + '_back_refs'
                if fields is not None and name not in fields:
                    continue
                obj.setdefault(name, []).append({
                    'to': list(self.objs[ref_uuid]['fq_name']),
                    'uuid': ref_uuid, 'attr': copy.deepcopy(ref['attr'])})
        if children:
            for child in self._children(obj_uuid):
                name = _under(self.types[child]) + 's'
                if fields is not None and name not in fields:
                    continue
                obj.setdefault(name, []).append({
                    'to': list(self.objs[child]['fq_name']), 'uuid': child})
        if detail:
            obj['name'] = obj['fq_name'][-1]
        if hrefs:
            obj['href'] = self.href(res_type, obj_uuid)
            if obj.get('parent_uuid'):
                obj['parent_href'] = self.href(obj['parent_type'],
                                               obj['parent_uuid'])
            for key, links in obj.items():
                if key.endswith(('_refs', '_back_refs')) or (
                        key in self._child_fields(res_type)):
                    for link in links:
                        # A dangling ref (an update's) names its own type.
                        kind = self.types.get(link['uuid']) or _canon(
                            key.rsplit('_', 2)[0] if key.endswith(
                                '_back_refs') else key[:-len('_refs')])
                        link['href'] = self.href(kind, link['uuid'])
        return obj

    def read(self, res_type, obj_uuid, query):
        self.typed(res_type, obj_uuid)
        fields = _split(query.get('fields'))
        obj = self.render(obj_uuid, fields=fields,
                          back_refs='exclude_back_refs' not in query,
                          children='exclude_children' not in query,
                          hrefs='exclude_hrefs' not in query)
        return {res_type: obj}

    def list(self, res_type, query):
        coll = res_type + 's'
        selected = [u for u, t in self.types.items() if t == res_type]
        parents = _split(query.get('parent_id'))
        if query.get('parent_fq_name_str'):
            parent_fq = str(query['parent_fq_name_str']).split(':')
            ptypes = _split(query.get('parent_type')) or list(
                getattr(_cls(res_type), 'parent_types', []))
            parents = [self.lookup(p, parent_fq) for p in ptypes]
            parents = [p for p in parents if p]
            if not parents:
                raise ApiError(404, 'Name %s not found' % _fmt(parent_fq))
        if parents is not None:
            selected = [u for u in selected
                        if self.objs[u].get('parent_uuid') in parents]
        back_ref_ids = _split(query.get('back_ref_id'))
        if back_ref_ids is not None:
            selected = [u for u in selected if any(
                ref.get('uuid') in back_ref_ids
                for k, refs in self.objs[u].items() if k.endswith('_refs')
                for ref in refs)]
        obj_uuids = _split(query.get('obj_uuids'))
        if obj_uuids is not None:
            selected = [u for u in selected if u in obj_uuids]
        fq_names = _split(query.get('fq_names'))
        if fq_names is not None:
            selected = [u for u in selected
                        if ':'.join(self.objs[u]['fq_name']) in fq_names]
        for flt in _split(query.get('filters')) or []:
            key, _sep, value = flt.partition('==')
            try:
                value = json.loads(value)
            except ValueError:
                pass
            selected = [u for u in selected
                        if self.objs[u].get(key) == value]
        if _boolarg(query, 'count'):
            return {coll: {'count': len(selected)}}
        fields = _split(query.get('fields')) or []
        hrefs = 'exclude_hrefs' not in query
        if _boolarg(query, 'detail'):
            result = []
            for u in selected:
                props = [k for k in self.objs[u]
                         if not k.endswith('_back_refs')]
                result.append({res_type: self.render(
                    u, fields=props + fields, hrefs=hrefs)})
            return {coll: result}
        return {coll: [self.render(u, fields=fields, hrefs=hrefs,
                                   detail=False) for u in selected]}

    # -- actions -------------------------------------------------------

    def fq_name_to_id(self, body):
        res_type = _canon(body.get('type'))
        if res_type not in _TYPES:
            raise ApiError(404, 'Invalid resource type %s' % res_type)
        found = self.lookup(res_type, body.get('fq_name'))
        if not found:
            raise ApiError(404, 'Name %s not found'
                           % _fmt(body.get('fq_name') or []))
        return {'uuid': found}

    def id_to_fq_name(self, body):
        obj_uuid = body.get('uuid')
        if obj_uuid not in self.objs:
            raise ApiError(404, 'UUID %s not found' % obj_uuid)
        return {'fq_name': list(self.objs[obj_uuid]['fq_name']),
                'type': self.types[obj_uuid]}

    def ref_update(self, body):
        res_type = _canon(body.get('type'))
        obj_uuid = body.get('uuid')
        ref_type = _canon(body.get('ref-type'))
        oper = body.get('operation')
        ref_uuid = body.get('ref-uuid')
        ref_fq = body.get('ref-fq-name')
        if None in (body.get('type'), obj_uuid, body.get('ref-type'), oper):
            raise ApiError(400, 'Bad Request: type/uuid/ref-type/operation '
                           'is null: %s, %s, %s, %s.'
                           % (res_type, obj_uuid, ref_type, oper))
        oper = oper.upper()
        if oper not in ('ADD', 'DELETE'):
            raise ApiError(400, 'Bad Request: operation should be add or '
                           'delete: %s' % oper)
        if not ref_uuid and not ref_fq:
            raise ApiError(400, 'Bad Request: ref-uuid or ref-fq-name must '
                           'be specified')
        if res_type not in _TYPES or ref_type not in _TYPES:
            raise ApiError(404, 'Invalid resource type')
        if not ref_uuid:
            ref_uuid = self.lookup(ref_type, ref_fq)
            if not ref_uuid:
                raise ApiError(404, 'Name %s not found' % _fmt(ref_fq))
        elif oper == 'ADD' and ref_uuid not in self.objs:
            raise ApiError(404, 'UUID %s not found' % ref_uuid)
        obj = self.typed(res_type, obj_uuid)
        field = _under(ref_type) + '_refs'
        refs = copy.deepcopy(obj.get(field) or [])
        if oper == 'ADD':
            for ref in refs:
                if ref['uuid'] == ref_uuid:
                    ref['attr'] = body.get('attr')
                    break
            else:
                refs.append({'uuid': ref_uuid, 'attr': body.get('attr')})
        else:
            for ref in refs:
                if ref['uuid'] == ref_uuid or ref['to'] == ref_fq:
                    refs.remove(ref)
                    break
        self.update(res_type, obj_uuid, {field: refs})
        return {'uuid': obj_uuid}

    def ref_relax(self, body):
        obj_uuid, ref_uuid = body.get('uuid'), body.get('ref-uuid')
        if not obj_uuid or not ref_uuid:
            raise ApiError(400, 'Bad Request: Both uuid and ref-uuid should '
                           'be specified: %s, %s.' % (obj_uuid, ref_uuid))
        if obj_uuid not in self.objs or ref_uuid not in self.objs:
            raise ApiError(404, 'uuid %s or %s not found'
                           % (obj_uuid, ref_uuid))
        self.relaxed.add((obj_uuid, ref_uuid))
        return {'uuid': obj_uuid}

    def useragent_kv(self, body):
        oper = body.get('operation')
        if oper is None:
            raise ApiError(400, "Error: Key/value store API needs "
                           "'operation' parameter")
        if 'key' not in body:
            raise ApiError(400, "Error: Key/value store API needs 'key' "
                           "parameter")
        key = body.get('key')
        if oper == 'STORE':
            self.kv[key] = body.get('value', '')
        elif oper == 'RETRIEVE':
            if not key:
                return {'value': [{'key': k, 'value': v}
                                  for k, v in self.kv.items()]}
            if isinstance(key, list):
                return {'value': [self.kv[k] for k in key if k in self.kv]}
            if key not in self.kv:
                raise ApiError(404, 'Unknown User-Agent key %s' % key)
            return {'value': self.kv[key]}
        elif oper == 'DELETE':
            self.kv.pop(key, None)
        else:
            raise ApiError(404, 'Invalid Operation %s' % oper)
        return None

    @staticmethod
    def _wrapper_key(cls, field):
        xsd_name = cls.prop_field_types[field]['xsd_type']
        return getattr(_xsd, xsd_name).attr_fields[0]

    def prop_collection_update(self, body):
        obj_uuid = body.get('uuid')
        if obj_uuid not in self.objs:
            raise ApiError(404, 'UUID %s not found' % obj_uuid)
        res_type = self.types[obj_uuid]
        cls = _cls(res_type)
        obj = copy.deepcopy(self.objs[obj_uuid])
        for upd in body.get('updates') or []:
            field, oper = upd.get('field'), upd.get('operation')
            value, pos = upd.get('value'), upd.get('position')
            is_list = field in cls.prop_list_fields
            if not is_list and field not in cls.prop_map_fields:
                raise ApiError(400, 'Field %s is not a list/map property of '
                               '%s' % (field, res_type))
            wrapped = (cls.prop_list_field_has_wrappers if is_list else
                       cls.prop_map_field_has_wrappers).get(field)
            wkey = self._wrapper_key(cls, field) if wrapped else None
            holder = obj.get(field) or ({wkey: []} if wrapped else [])
            items = holder.setdefault(wkey, []) if wrapped else holder
            if is_list and oper == 'add':
                items.append(value)
            elif is_list and oper in ('modify', 'delete'):
                try:
                    index = int(pos)
                    if oper == 'modify':
                        items[index] = value
                    else:
                        del items[index]
                except (TypeError, ValueError, IndexError):
                    raise ApiError(400, 'Bad position %s for %s'
                                   % (pos, field))
            elif not is_list and oper in ('set', 'delete'):
                key_name = cls.prop_map_field_key_names[field]
                key = value.get(key_name) if oper == 'set' else pos
                items[:] = [i for i in items if i.get(key_name) != key]
                if oper == 'set':
                    items.append(value)
            else:
                raise ApiError(400, 'Unsupported operation %s on %s'
                               % (oper, field))
            obj[field] = holder
        self._stamp(obj, created=False)
        self.objs[obj_uuid] = obj
        return None

    def prop_collection_get(self, query):
        obj_uuid = query.get('uuid')
        if obj_uuid not in self.objs:
            raise ApiError(404, 'UUID %s not found' % obj_uuid)
        obj = self.objs[obj_uuid]
        cls = _cls(self.types[obj_uuid])
        out = {}
        for field in _split(query.get('fields')) or []:
            holder = copy.deepcopy(obj.get(field))
            if isinstance(holder, dict) and len(holder) == 1:
                holder = list(holder.values())[0]
            holder = holder or []
            if field in cls.prop_map_fields:
                key = cls.prop_map_field_key_names[field]
                out[field] = [[i, i.get(key)] for i in holder]
            else:
                out[field] = [[i, str(n)] for n, i in enumerate(holder)]
        return out

    # -- virtual-network -------------------------------------------------

    def _rt_rules(self):
        gsc = self.objs[self.lookup('global-system-config',
                                    ['default-global-system-config'])]
        return (gsc.get('autonomous_system'),
                bool(gsc.get('enable_4byte_as')))

    def _check_route_targets(self, obj):
        global_asn, four_byte = self._rt_rules()
        for name in ('route_target_list', 'import_route_target_list',
                     'export_route_target_list'):
            for rt in (obj.get(name) or {}).get('route_target') or []:
                self._check_route_target(str(rt), global_asn, four_byte)

    @staticmethod
    def _check_route_target(rt, global_asn, four_byte):
        parts = rt.split(':')
        ok = len(parts) == 3 and parts[0] == 'target'
        asn = parts[1] if ok else ''
        try:
            target = int(parts[2]) if ok else None
            if asn.isdigit():
                asn = int(asn)
                if asn > 0xFFFF and not four_byte or not (
                        0 < asn <= 0xFFFFFFFF):
                    raise ApiError(400, 'ASN out of range, should be '
                                   'between 1-0x%s' % (
                                       'FFFFFFFF' if four_byte else 'FFFF'))
                ok = asn <= 0xFFFF or target <= 0xFFFF
            elif asn.lower().endswith('l') and asn[:-1].isdigit():
                ok = target <= 0xFFFF
                asn = int(asn[:-1])
            else:
                # The number after an address is not checked (observed:
                # target:1.2.3.4:70000 accepted).
                ipaddress.IPv4Address(asn)
        except ValueError:
            ok = False
        if not ok:
            raise ApiError(400, "Route target must be of the format "
                           "'target:<asn>:<number>' or "
                           "'target:<ip>:<number>'")
        low, high = _RT_RESERVED
        if asn == global_asn and not (
                1 <= target < low or high < target <= 0xFFFFFFFF):
            raise ApiError(400, 'Configured route target must use ASN that '
                           'is different from global ASN or route target '
                           'value must be less than %d and greater than %d'
                           % (low, high))

    # -- security-group ------------------------------------------------

    def _pre_create_security_group(self, obj):
        if obj.get('security_group_id') is not None:
            raise ApiError(403, 'Cannot set the security group ID')
        taken = {o.get('security_group_id') for u, o in self.objs.items()
                 if self.types[u] == 'security-group'}
        sg_id = _SG_ID_BASE + 1
        while sg_id in taken:
            sg_id += 1
        obj['security_group_id'] = sg_id
        self._check_sg_rules(obj)

    def _pre_update_security_group(self, old, new, body):
        if body.get('security_group_id') not in (
                None, old.get('security_group_id')):
            raise ApiError(403, 'Cannot update the security group ID')
        new['security_group_id'] = old.get('security_group_id')
        self._check_sg_rules(new)

    @staticmethod
    def _check_sg_rules(obj):
        entries = obj.get('security_group_entries') or {}
        for rule in entries.get('policy_rule') or []:
            _check_sg_rule(rule)

    def _used_addresses(self, vn_uuid, skip=None):
        used = set(self.ip_reservations.get(vn_uuid, ()))
        for u, t in self.types.items():
            if t != 'instance-ip' or u == skip:
                continue
            iip = self.objs[u]
            refs = iip.get('virtual_network_refs') or []
            addr = iip.get('instance_ip_address')
            if refs and refs[0]['uuid'] == vn_uuid and addr:
                used.add(ipaddress.ip_address(addr))
        for u, t in self.types.items():
            if t != 'floating-ip' or u == skip:
                continue
            fip = self.objs[u]
            pool = self.objs.get(fip.get('parent_uuid')) or {}
            addr = fip.get('floating_ip_address')
            if pool.get('parent_uuid') == vn_uuid and addr:
                used.add(ipaddress.ip_address(addr))
        return used

    def _prepare_subnets(self, vn, old=None):
        """Validate and complete the ipam subnets of ``vn`` (in place)."""
        old_by_net = {}
        for sn in _vn_ipam_subnets(old or {}):
            old_by_net[_net_of(sn)] = sn
        nets = []
        for sn in _vn_ipam_subnets(vn):
            prefix = '%s/%s' % (sn['subnet']['ip_prefix'],
                                sn['subnet'].get('ip_prefix_len'))
            try:
                net = _net_of(sn)
            except ValueError:
                raise ApiError(400, 'Invalid subnet %s' % prefix)
            prev = old_by_net.get(net)
            if sn.get('subnet_uuid'):
                if not _check_uuid(str(sn['subnet_uuid'])):
                    raise ApiError(409, 'Invalid subnet-uuid %s in subnet:%s'
                                   % (sn['subnet_uuid'], prefix))
            else:
                sn['subnet_uuid'] = (prev or {}).get('subnet_uuid') or str(
                    uuidlib.uuid4())
            from_start = bool((prev or sn).get('addr_from_start'))
            try:
                gw = _ip(sn.get('default_gateway'))
            except ValueError:
                raise ApiError(409, 'Invalid gateway Ip address:%s'
                               % sn.get('default_gateway'))
            if prev:
                prev_gw = _ip(prev.get('default_gateway'))
                if gw is not None and gw != prev_gw:
                    raise ApiError(400, 'default gateway change is not '
                                   'allowed orig:%s, new: %s'
                                   % (prev_gw, gw))
                gw = prev_gw
            elif gw is None:
                gw = _default_gw(net, from_start)
            elif not gw.is_unspecified and (
                    gw.version != net.version or
                    int(gw) < int(net.network_address) + 1 or
                    int(gw) > int(net.broadcast_address) - 1):
                raise ApiError(409, 'gateway Ip %s out of cidr: %s'
                               % (gw, prefix))
            try:
                dns = _ip(sn.get('dns_server_address'))
            except ValueError:
                raise ApiError(409, 'Invalid Dns Server Ip address:%s'
                               % sn.get('dns_server_address'))
            dhcp_off = sn.get('enable_dhcp', True) is False
            if dns is None or not (dhcp_off or _dhcp_options(sn)):
                dns = _default_dns(net, from_start)
            for pool in sn.get('allocation_pools') or []:
                try:
                    start, end = _ip(pool['start']), _ip(pool['end'])
                except (KeyError, ValueError):
                    raise ApiError(409, 'Invalid allocation Pool start:%s, '
                                   'end:%s in subnet:%s' % (
                                       pool.get('start'), pool.get('end'),
                                       prefix))
                if start not in net or end not in net:
                    raise ApiError(409, 'allocation pool start:%s, end:%s '
                                   'out of cidr:%s' % (start, end, prefix))
                if end < start:
                    raise ApiError(500, 'Invalid allocation pool %s' % pool)
            sn['default_gateway'] = str(gw)
            sn['dns_server_address'] = str(dns)
            if prev and _ip(prev.get('dns_server_address')) != dns and \
                    dns in self._used_addresses(vn['uuid']):
                raise ApiError(500, 'Virtual-Network(%s) has invalid '
                               'subnet(%s)' % (':'.join(vn['fq_name']),
                                               prefix))
            nets.append(net)
        for i, a in enumerate(nets):
            for b in nets[i + 1:]:
                if a.version == b.version and a.overlaps(b):
                    raise ApiError(400, 'Overlapping addresses: %s'
                                   % ([str(a), str(b)],))
        if old is not None:
            removed = [n for n in old_by_net if n not in nets]
            for addr in sorted(self._used_addresses(old['uuid']),
                               key=lambda a: (a.version, int(a))):
                if any(addr.version == n.version and addr in n
                       for n in removed):
                    raise ApiError(409, 'Cannot Delete IP Block, IP(%s) is '
                                   'in use' % addr)

    def _pre_create_virtual_network(self, obj):
        if obj.get('virtual_network_network_id') is not None:
            raise ApiError(403, 'Cannot set the virtual network ID')
        self._prepare_subnets(obj)
        self._check_route_targets(obj)
        taken = {o.get('virtual_network_network_id')
                 for u, o in self.objs.items()
                 if self.types[u] == 'virtual-network'}
        vn_id = 1
        while vn_id in taken:
            vn_id += 1
        obj['virtual_network_network_id'] = vn_id

    def _post_create_virtual_network(self, obj):
        self.create('routing-instance', {
            'fq_name': obj['fq_name'] + [obj['fq_name'][-1]],
            'parent_type': 'virtual-network',
            'routing_instance_is_default': True})

    def _pre_update_virtual_network(self, old, new, body):
        if body.get('virtual_network_network_id') is not None and (
                body['virtual_network_network_id'] !=
                old.get('virtual_network_network_id')):
            raise ApiError(403, 'Cannot update the virtual network ID')
        new['virtual_network_network_id'] = old['virtual_network_network_id']
        if 'network_ipam_refs' in body:
            self._prepare_subnets(new, old)
        self._check_route_targets(body)

    def vn_subnets(self, vn_uuid):
        vn = self.objs[vn_uuid]
        return [_Subnet(sn) for sn in _vn_ipam_subnets(vn)]

    def allocate(self, vn_uuid, asked=None, version=None, subnet_uuid=None,
                 vm_port=False):
        """(address, subnet) for a new address of the VN, or ApiError."""
        vn = self.objs[vn_uuid]
        fq_str = str([str(n) for n in vn['fq_name']])
        subnets = self.vn_subnets(vn_uuid)
        used = self._used_addresses(vn_uuid)
        if asked is not None:
            home = [s for s in subnets if asked in s]
            if home and (home[0].is_reserved(asked) or asked in used):
                if asked != home[0].gw:
                    raise ApiError(409, 'IP address already in use')
                if vm_port:
                    raise ApiError(400, 'Gateway IP cannot be used by VM '
                                   'port')
        tried, matched = [], False
        for sub in subnets:
            if subnet_uuid and sub.uuid != subnet_uuid:
                continue
            matched = True
            if version and sub.version != version:
                continue
            if asked is not None:
                if asked in (sub.gw, sub.dns) or asked in sub:
                    return asked, sub
                continue
            tried.append(sub.name)
            addr = sub.first_free(used)
            if addr is not None:
                return addr, sub
            if subnet_uuid:
                break
        if subnet_uuid and not matched:
            raise ApiError(400, 'Virtual-Network(%s) has invalid subnet(%s)'
                           % (fq_str, subnet_uuid))
        raise ApiError(400, 'Virtual-Network(%s) has exhausted subnet(%s)'
                       % (fq_str, tried))

    # -- other types ---------------------------------------------------

    def _pre_create_virtual_machine_interface(self, obj):
        if not obj.get('virtual_network_refs'):
            raise ApiError(500, "Traceback (most recent call last):\n  ...\n"
                           "KeyError: 'virtual_network_refs'")
        macs = (obj.get('virtual_machine_interface_mac_addresses') or {}
                ).get('mac_address')
        if macs:
            macs = [m.replace('-', ':') for m in macs]
        else:
            u = obj['uuid']
            macs = ['02:%s:%s:%s:%s:%s' % (u[0:2], u[2:4], u[4:6], u[6:8],
                                           u[9:11])]
        obj['virtual_machine_interface_mac_addresses'] = {'mac_address': macs}

    def _pre_create_instance_ip(self, obj):
        vn_refs = obj.get('virtual_network_refs') or []
        if obj.get('virtual_router_refs') and (
                vn_refs or obj.get('network_ipam_refs')):
            raise ApiError(400, 'router_refs and network_refs are not '
                           'allowed')
        if not vn_refs:
            raise ApiError(400, 'instance-ip needs a virtual_network_refs '
                           '(flat-subnet/vrouter allocation is not modelled'
                           ' by this fake)')
        family = obj.get('instance_ip_family')
        version = {'v4': 4, 'v6': 6}.get(family)
        try:
            asked = _ip(obj.get('instance_ip_address'))
        except ValueError:
            raise ApiError(400, 'Invalid IP address %s'
                           % obj.get('instance_ip_address'))
        vm_port = any(
            (self.objs.get(r['uuid']) or {}).get('virtual_machine_refs')
            for r in obj.get('virtual_machine_interface_refs') or [])
        addr, sub = self.allocate(vn_refs[0]['uuid'], asked, version,
                                  obj.get('subnet_uuid'), vm_port)
        obj['instance_ip_address'] = str(addr)
        obj['subnet_uuid'] = sub.uuid

    def _pre_create_floating_ip(self, obj):
        if obj.get('parent_type') != 'floating-ip-pool':
            return
        if not obj.get('project_refs'):
            project = self.lookup('project', obj['fq_name'][:2])
            if not project:
                raise ApiError(400, 'Unknown reference in resource create '
                               '%s.' % obj)
            obj['project_refs'] = [{'to': obj['fq_name'][:2],
                                    'uuid': project, 'attr': None}]
        vn_uuid = self.objs[obj['parent_uuid']]['parent_uuid']
        try:
            asked = _ip(obj.get('floating_ip_address'))
        except ValueError:
            raise ApiError(400, 'Invalid IP address %s'
                           % obj.get('floating_ip_address'))
        if asked is not None and asked in self._used_addresses(vn_uuid):
            raise ApiError(409, 'IP address already in use')
        try:
            addr, _sub = self.allocate(vn_uuid, asked,
                                       asked.version if asked else 4)
        except ApiError as err:
            raise ApiError(500, err.message)
        obj['floating_ip_address'] = str(addr)

    def _pre_update_floating_ip(self, old, new, body):
        if old.get('floating_ip_address'):
            new['floating_ip_address'] = old['floating_ip_address']

    def _pre_update_instance_ip(self, old, new, body):
        asked = body.get('instance_ip_address')
        if asked and _ip(asked) != _ip(old.get('instance_ip_address')):
            raise ApiError(400, 'Instance IP Address can not be changed')

    def vn_ip_alloc(self, vn_uuid, body):
        self.typed('virtual-network', vn_uuid)
        family = body.get('family')
        version = {'v4': 4, 'v6': 6}.get(family)
        out = []
        for _i in range(int(body.get('count') or 1)):
            try:
                addr, _sub = self.allocate(vn_uuid, None, version,
                                           body.get('subnet'))
            except ApiError as err:
                raise ApiError(409 if 'exhausted' in err.message else 404,
                               err.message)
            self.ip_reservations.setdefault(vn_uuid, set()).add(addr)
            out.append(str(addr))
        return {'ip_addr': out}

    def vn_ip_free(self, vn_uuid, body):
        self.typed('virtual-network', vn_uuid)
        reserved = self.ip_reservations.get(vn_uuid, set())
        for addr in body.get('ip_addr') or []:
            reserved.discard(ipaddress.ip_address(addr))
        return {}

    def vn_subnet_ip_count(self, vn_uuid, body):
        self.typed('virtual-network', vn_uuid)
        used = self._used_addresses(vn_uuid)
        counts = []
        for name in body.get('subnet_list') or []:
            net = ipaddress.ip_network(name, strict=False)
            counts.append(len([a for a in used
                               if a.version == net.version and a in net]))
        return {'ip_count_list': counts}


# --------------------------------------------------------------------------
# HTTP

class TokenCheck(object):
    """Confirms tokens with a real Keystone, as keystonemiddleware does.

    Holds a token of its own (the service user's) to ask with; a 401 on
    it gets a new one once.
    """

    def __init__(self, url, user, password, project,
                 user_domain='Default', project_domain='Default',
                 timeout=5.0):
        self.url = url.rstrip('/')
        self._auth = {'auth': {
            'identity': {'methods': ['password'], 'password': {'user': {
                'name': user, 'password': password,
                'domain': {'name': user_domain}}}},
            'scope': {'project': {'name': project,
                                  'domain': {'name': project_domain}}}}}
        self.timeout = timeout
        self._own = None
        self._lock = threading.Lock()
        self._local = threading.local()

    def _session(self):
        if not hasattr(self._local, 'session'):
            self._local.session = requests.Session()
        return self._local.session

    def _own_token(self, renew=False):
        with self._lock:
            if self._own is None or renew:
                res = self._session().post(
                    self.url + '/auth/tokens', json=self._auth,
                    timeout=self.timeout)
                res.raise_for_status()
                self._own = res.headers['X-Subject-Token']
            return self._own

    def user_of(self, token):
        """The token's user and project names, or None if Keystone says
        it is not valid. Raises ``requests.RequestException`` when
        Keystone cannot tell."""
        for renew in (False, True):
            res = self._session().get(
                self.url + '/auth/tokens?nocatalog', timeout=self.timeout,
                headers={'X-Auth-Token': self._own_token(renew),
                         'X-Subject-Token': token})
            if res.status_code == 401 and not renew:
                continue
            if res.status_code == 200:
                body = res.json()['token']
                return (body['user']['name'],
                        body.get('project', {}).get('name'))
            if res.status_code in (401, 404):
                return None
            res.raise_for_status()
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'FakeContrailAPI/1.0'
    # As the real server (gevent's WSGI server): Nagle's algorithm on,
    # and an answer's headers and body in two writes (``answer``), so a
    # client that acknowledges the headers late gets the body 40 ms late
    # on a kept-alive connection (test_server_behaviours has the row).
    disable_nagle_algorithm = False

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.fake._handle(self, 'GET')

    def do_POST(self):
        self.server.fake._handle(self, 'POST')

    def do_PUT(self):
        self.server.fake._handle(self, 'PUT')

    def do_DELETE(self):
        self.server.fake._handle(self, 'DELETE')

    def read_body(self):
        length = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(length) if length else b''

    def answer(self, status, body, headers=()):
        if body is None:
            data, ctype = b'', 'text/html; charset=UTF-8'
        elif isinstance(body, str):
            data, ctype = body.encode('utf-8'), 'text/html; charset=UTF-8'
        else:
            data = json.dumps(body).encode('utf-8')
            ctype = 'application/json; charset="UTF-8"'
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class FakeContrailAPI(httpfake.ServedFake):
    """The fake config API server.  See the module docstring."""

    handler = _Handler
    thread_name = 'fake-contrail-api'
    is_fake = True

    def __init__(self, host='127.0.0.1', port=0, keystone=None):
        super().__init__(host, port)
        self.keystone = keystone
        self._tokens = []
        self._refused = 0
        self._lock = threading.RLock()
        self._db = _ConfigDB(self.url)

    # -- life cycle ------------------------------------------------------

    def start(self):
        """Listen (on ``port``, 0 = any free one) and serve in a thread."""
        self._listen()
        return self

    def stop(self):
        self._unlisten()

    def _listening(self):
        with self._lock:
            self._db.base_url = self.url

    def reset(self):
        """Forget every object and key; pre-populate again."""
        with self._lock:
            self._db = _ConfigDB(self.url)

    def add_project(self, fq_name):
        """A project, as Keystone's sync makes one on a real cluster."""
        with self._lock:
            if not self._db.lookup('project', fq_name):
                self._db.create('project', {'fq_name': list(fq_name)})

    # -- Keystone ------------------------------------------------------

    @property
    def tokens(self):
        """(token, user, project) of each token accepted, in the order
        first seen (Keystone mode)."""
        with self._lock:
            return list(self._tokens)

    @property
    def refused(self):
        """How many requests got a 401 (Keystone mode)."""
        with self._lock:
            return self._refused

    def _check_token(self, handler):
        """None if the request may go on, else the answer it gets."""
        token = handler.headers.get('X-Auth-Token')
        try:
            who = self.keystone.user_of(token) if token else None
        except requests.RequestException:
            return 503, 'Service Unavailable: Keystone does not answer', ()
        if who is None:
            with self._lock:
                self._refused += 1
            return 401, 'Authentication required', (
                ('WWW-Authenticate', 'Keystone uri="%s"' %
                 self.keystone.url),)
        with self._lock:
            if token not in [t[0] for t in self._tokens]:
                self._tokens.append((token,) + who)
        return None

    # -- state ---------------------------------------------------------

    def objects(self, res_type):
        """Deep copies of the stored objects of a type (as stored: props,
        refs, parent; no back-refs or children), but for those a fresh
        server holds."""
        res_type = _canon(res_type)
        with self._lock:
            return [copy.deepcopy(self._db.objs[u])
                    for u, t in self._db.types.items()
                    if t == res_type and u not in self._db.prepopulated]

    def get(self, res_type, obj_uuid):
        """The stored object, or None (also for a uuid of another type)."""
        with self._lock:
            if self._db.types.get(obj_uuid) != _canon(res_type):
                return None
            return copy.deepcopy(self._db.objs[obj_uuid])

    def populate_foreign(self, count):
        """Add ``count`` VMs, each with an interface, in a network of
        another project: a busy shared cluster's objects."""
        with self._lock:
            db = self._db
            if not db.lookup('project', ['default-domain', 'others']):
                db.create('project', {'fq_name': ['default-domain',
                                                  'others']})
                db.create('virtual-network', {
                    'fq_name': ['default-domain', 'others', 'busy']})
            vn = db.lookup('virtual-network',
                           ['default-domain', 'others', 'busy'])
            base = len(db.objs)
            for n in range(base, base + count):
                vm = db.create('virtual-machine', {
                    'fq_name': ['vm-%d' % n], 'display_name': 'nova-%d' % n,
                    'server_type': 'virtual-server'})
                db.create('virtual-machine-interface', {
                    'fq_name': ['default-domain', 'others', 'port-%d' % n],
                    'parent_type': 'project',
                    'virtual_network_refs': [{
                        'to': ['default-domain', 'others', 'busy'],
                        'uuid': vn, 'attr': None}],
                    'virtual_machine_refs': [{
                        'to': ['vm-%d' % n],
                        'uuid': vm['virtual-machine']['uuid'],
                        'attr': None}]})

    def kv(self):
        """The user-agent key-value store, as a dict."""
        with self._lock:
            return dict(self._db.kv)

    # -- dispatch ------------------------------------------------------

    def _handle(self, handler, method):
        if not handler.path.startswith('/'):
            # A whole URL, as sent to a forward proxy: the real server's
            # router matches it against its paths and finds none.
            handler.read_body()
            handler.answer(404, 'Not found: %r' % handler.path)
            return
        parts = urlsplit(handler.path)
        path = parts.path.rstrip('/') or '/'
        raw = handler.read_body()
        if self.keystone is not None:
            refusal = self._check_token(handler)
            if refusal is not None:
                handler.answer(*refusal)
                return
        query = {k: v[-1] for k, v in
                 parse_qs(parts.query, keep_blank_values=True).items()}
        try:
            body = json.loads(raw.decode('utf-8')) if raw.strip() else {}
        except ValueError:
            handler.answer(400, 'Bad Request, invalid JSON body')
            return
        host = handler.headers.get('Host') or '%s:%d' % (self.host,
                                                         self.port)
        try:
            with self._lock:
                status, result = 200, self._route(method, path, query, body,
                                                  'http://' + host)
        except ApiError as err:
            status, result = err.status, err.message
        except Exception:
            status, result = 500, traceback.format_exc()
        handler.answer(status, result)

    def _homepage(self, root):
        links = [{'link': {'href': root + '/config-root', 'name':
                           'config-root', 'rel': 'root'}}]
        for res_type in sorted(_TYPES):
            links.append({'link': {'href': '%s/%ss' % (root, res_type),
                                   'name': res_type, 'rel': 'collection'}})
            links.append({'link': {'href': '%s/%s' % (root, res_type),
                                   'name': res_type,
                                   'rel': 'resource-base'}})
        for uri, name, method in _ACTIONS:
            links.append({'link': {'href': root + uri, 'name': name,
                                   'rel': 'action', 'method': method}})
        return {'href': root, 'links': links}

    def _route(self, method, path, query, body, root):
        db = self._db
        segs = path.strip('/').split('/') if path != '/' else []
        if not segs:
            if method != 'GET':
                raise ApiError(405, 'Method not allowed')
            return self._homepage(root)
        actions = {
            ('POST', 'fqname-to-id'): db.fq_name_to_id,
            ('POST', 'id-to-fqname'): db.id_to_fq_name,
            ('POST', 'ref-update'): db.ref_update,
            ('POST', 'ref-relax-for-delete'): db.ref_relax,
            ('POST', 'useragent-kv'): db.useragent_kv,
            ('POST', 'prop-collection-update'): db.prop_collection_update,
        }
        if len(segs) == 1 and (method, segs[0]) in actions:
            return actions[(method, segs[0])](body)
        if segs == ['prop-collection-get'] and method == 'GET':
            return db.prop_collection_get(query)
        if segs == ['list-bulk-collection'] and method == 'POST':
            res_type = _canon(body.get('type'))
            if res_type not in _TYPES:
                raise ApiError(404, 'Invalid resource type %s' % res_type)
            return db.list(res_type, body)
        if len(segs) == 3 and segs[0] == 'virtual-network' and \
                method == 'POST':
            vn_actions = {'ip-alloc': db.vn_ip_alloc,
                          'ip-free': db.vn_ip_free,
                          'subnet-ip-count': db.vn_subnet_ip_count}
            if segs[2] in vn_actions:
                return vn_actions[segs[2]](segs[1], body)
        if len(segs) == 1 and segs[0].endswith('s') and \
                segs[0][:-1] in _TYPES:
            res_type = segs[0][:-1]
            if method == 'GET':
                return db.list(res_type, query)
            if method == 'POST':
                if not isinstance(body.get(res_type), dict):
                    raise ApiError(400, 'Bad Request, no %s in POST body'
                                   % res_type)
                return db.create(res_type, body[res_type])
        if len(segs) == 2 and segs[0] in _TYPES:
            res_type, obj_uuid = segs
            if method == 'GET':
                return db.read(res_type, obj_uuid, query)
            if method == 'PUT':
                db.typed(res_type, obj_uuid)
                if not isinstance(body.get(res_type), dict):
                    raise ApiError(400, 'Bad Request, no %s in PUT body'
                                   % res_type)
                return db.update(res_type, obj_uuid, body[res_type])
            if method == 'DELETE':
                db.delete(res_type, obj_uuid)
                return None
        raise ApiError(404, 'Not found: %s %s' % (method, path))
