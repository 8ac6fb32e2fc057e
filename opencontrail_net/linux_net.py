"""Every netlink operation of the driver, through pyroute2.

Small functions; NetlinkError becomes PortError so callers see one kind of
failure. Each server thread keeps one IPRoute socket: opening one costs
more than the request it serves.

pyroute2 is loaded by :func:`load`, not at import: it loads every netlink
family it knows (about 0.1 s), which the driver's socket need not wait
for. The service loads it in its start, before any call may use it.
"""

import contextlib
import errno
import functools
import importlib.util
import ipaddress
import logging as std_logging
import os
import socket
import sys
import threading

from oslo_log import log as logging

from opencontrail_net import exception
from opencontrail_net import sysctl

LOG = logging.getLogger(__name__)


def _lazy(name):
    """``name``, executed at its first attribute read (importlib's
    LazyLoader). That first read must come from one thread: the service
    makes it in its start, through :func:`load`."""
    found = sys.modules.get(name)
    if found is not None:
        return found
    spec = importlib.util.find_spec(name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


pyroute2 = _lazy('pyroute2')


def load():
    """Load pyroute2 now; return what it is (for the log)."""
    quiet = std_logging.getLogger('pyroute2').level
    loaded = 'pyroute2 %s' % pyroute2.__version__
    # Loading sets its logger's level to 0 (all of it): the level the
    # configuration gave it stands.
    std_logging.getLogger('pyroute2').setLevel(quiet)
    return loaded


def _nodad():
    return pyroute2.netlink.rtnl.ifaddrmsg.IFA_F_NODAD


_local = threading.local()


@contextlib.contextmanager
def _iproute():
    ip = getattr(_local, 'ip', None)
    if ip is None:
        ip = _local.ip = pyroute2.IPRoute()
    try:
        yield ip
    except pyroute2.NetlinkError:
        raise
    except Exception:
        # A broken socket is not reused.
        _local.ip = None
        ip.close()
        raise


def _netlink(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except pyroute2.NetlinkError as exc:
            raise exception.PortError(
                reason='%s%r failed: %s' % (func.__name__, args, exc))
    return wrapper


def _index(ip, name):
    found = ip.link_lookup(ifname=name)
    return found[0] if found else None


def _get(ip, name):
    """The link named ``name``, or None: one netlink round trip."""
    try:
        return ip.link('get', ifname=name)[0]
    except pyroute2.NetlinkError as exc:
        if exc.code == errno.ENODEV:
            return None
        raise


@_netlink
def link_alias(name):
    """Return (exists, alias) of the interface ``name``."""
    with _iproute() as ip:
        link = _get(ip, name)
        if link is None:
            return False, None
        return True, link.get_attr('IFLA_IFALIAS')


@_netlink
def link_index(name):
    """Return (index, alias) of the interface ``name``; (None, None) if
    there is none. One netlink round trip."""
    with _iproute() as ip:
        link = _get(ip, name)
        if link is None:
            return None, None
        return link['index'], link.get_attr('IFLA_IFALIAS')


def if_index(name):
    """The index of interface ``name`` (no netlink message to decode);
    None if there is none."""
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return None


@_netlink
def create_veth(host_name, peer_name, peer_mac, mtu, alias, master=None,
                group=0):
    """Create a veth pair; False if either name is taken.

    The host end is up (in bridge ``master``, an index, if given, and in
    link group ``group``); the peer carries the MAC. The host end carries
    ``alias`` (the full endpoint ID) so a later call can tell our
    interface from anyone else's of the same name. The kernel ignores an
    alias in the request that makes the pair.
    """
    extra = {} if master is None else {'master': master}
    if group:
        extra['group'] = group
    with _iproute() as ip:
        try:
            ip.link('add', ifname=host_name, kind='veth', mtu=mtu,
                    state='up', peer={'ifname': peer_name,
                                      'address': peer_mac, 'mtu': mtu},
                    **extra)
        except pyroute2.NetlinkError as exc:
            if exc.code == errno.EEXIST:
                return False
            raise
        try:
            ip.link('set', ifname=host_name, ifalias=alias)
        except pyroute2.NetlinkError:
            _delete(ip, host_name)
            raise
    return True


def _delete(ip, name=None, index=None):
    try:
        if index is None:
            ip.link('del', ifname=name)
        else:
            ip.link('del', index=index)
    except pyroute2.NetlinkError as exc:
        if exc.code != errno.ENODEV:
            raise
        return False
    return True


@_netlink
def delete_link(name):
    """Delete an interface; a missing one is not an error."""
    with _iproute() as ip:
        return _delete(ip, name)


@_netlink
def delete_index(index):
    """Delete the interface ``index``; a missing one is not an error.

    By index, not name: an interface made since under the same name is
    not the one deleted.
    """
    with _iproute() as ip:
        return _delete(ip, index=index)


def _enable_ipv6(name, needed):
    """Turn IPv6 on for a bridge, and its duplicate address detection off.

    A bridge created while IPv6 is disabled by default stays without it.
    Only what differs is written: a managed plugin sees /proc/sys
    read-only, and on a host with the usual defaults nothing needs
    writing. ``needed``: the bridge carries IPv6 addresses, so IPv6 left
    off is an error rather than a warning.
    """
    for key, value in (('disable_ipv6', '0'), ('accept_dad', '0')):
        path = '/proc/sys/net/ipv6/conf/%s/%s' % (name, key)
        try:
            sysctl.write(path, value)
        except FileNotFoundError:
            return  # No IPv6 in this kernel.
        except OSError as exc:
            if key == 'disable_ipv6' and needed:
                raise exception.PortError(
                    reason='IPv6 is disabled on bridge %s and %s cannot be '
                    'written (%s): set net.ipv6.conf.default.disable_ipv6=0 '
                    'on the host' % (name, path, exc.strerror))
            # Addresses are added with IFA_F_NODAD: DAD only delays the
            # bridge's link-local address.
            LOG.debug('Cannot write %s: %s', path, exc)


@_netlink
def ensure_bridge(name, mac, mtu, alias, addresses):
    """Create the bridge if missing, with a fixed MAC and the addresses.

    A fixed MAC keeps the gateway's MAC stable while ports come and go.
    ``addresses`` are CIDR strings (gateway/prefix).
    """
    with _iproute() as ip:
        index = _index(ip, name)
        if index is None:
            try:
                ip.link('add', ifname=name, kind='bridge', address=mac,
                        mtu=mtu)
            except pyroute2.NetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise
            index = _index(ip, name)
            ip.link('set', index=index, ifalias=alias)
        _enable_ipv6(name, any(':' in a for a in addresses))
        have = {(a.get_attr('IFA_ADDRESS'), a['prefixlen'])
                for a in ip.get_addr(index=index)}
        for cidr in addresses:
            iface = ipaddress.ip_interface(cidr)
            key = (str(iface.ip), iface.network.prefixlen)
            if key in have:
                continue
            kwargs = {}
            if iface.version == 6:
                kwargs['flags'] = _nodad()
            ip.addr('add', index=index, address=key[0], prefixlen=key[1],
                    **kwargs)
        ip.link('set', index=index, state='up')
    return index


@_netlink
def bridges(prefix):
    """Bridges named ``prefix``... that carry an alias, with their
    addresses: [(name, alias, [ipaddress.ip_interface])], link-local
    addresses left out."""
    found = []
    with _iproute() as ip:
        for link in ip.get_links():
            name = link.get_attr('IFLA_IFNAME')
            alias = link.get_attr('IFLA_IFALIAS')
            if not (name.startswith(prefix) and alias and link.get_nested(
                    'IFLA_LINKINFO', 'IFLA_INFO_KIND') == 'bridge'):
                continue
            addresses = [
                ipaddress.ip_interface('%s/%d' % (
                    a.get_attr('IFA_ADDRESS'), a['prefixlen']))
                for a in ip.get_addr(index=link['index'])]
            found.append((name, alias, [a for a in addresses
                                        if not a.ip.is_link_local]))
    return found


@_netlink
def veth_host_ends(prefix, group=None):
    """Host ends of veth pairs named ``prefix``...``p0`` that carry an alias
    (and are in link group ``group``, if given).

    Returns [(name, alias, idle)]: ``idle`` when the peer is in this
    namespace too, so plugged into no container.
    """
    with _iproute() as ip:
        links = {link['index']: link for link in ip.get_links()}
    found = []
    for index, link in links.items():
        name = link.get_attr('IFLA_IFNAME')
        alias = link.get_attr('IFLA_IFALIAS')
        if not (name.startswith(prefix) and name.endswith('p0') and alias and
                link.get_nested('IFLA_LINKINFO', 'IFLA_INFO_KIND') ==
                'veth'):
            continue
        if group is not None and link.get_attr('IFLA_GROUP') != group:
            continue
        peer = links.get(link.get_attr('IFLA_LINK'))
        # A peer in another namespace has an index of that namespace: it
        # is here only if it points back.
        idle = (link.get_attr('IFLA_LINK_NETNSID') is None and
                peer is not None and peer.get_attr('IFLA_LINK') == index)
        found.append((name, alias, idle))
    return found


def _first_free_eth(ns):
    names = {link.get_attr('IFLA_IFNAME') for link in ns.get_links()}
    n = 0
    while 'eth%d' % n in names:
        n += 1
    return 'eth%d' % n


@_netlink
def move_into_sandbox(name, sandbox_key, addresses, gateways):
    """Hand interface ``name`` to a running container, as Docker would.

    For a container that lost its interface: ``name`` moves into the
    network namespace at ``sandbox_key`` as its first free ``ethN``, gets
    ``addresses`` (CIDRs) and comes up; each of ``gateways`` becomes the
    default route of its family where the container has none. Returns
    the name inside the container.
    """
    fd = os.open(sandbox_key, os.O_RDONLY)
    try:
        with _iproute() as ip:
            index = _index(ip, name)
            if index is None:
                raise exception.PortError(reason='no interface %s' % name)
            ip.link('set', index=index, net_ns_fd=fd)
    finally:
        os.close(fd)
    # In a thread of its own, which enters the container's namespace
    # (setns changes only the calling thread): pyroute2's own netns
    # sockets fork a child, which a threaded process must not do, and its
    # event loop per thread must not be shared with this thread's socket.
    result = {}
    worker = threading.Thread(target=_configure_in_sandbox, args=(
        name, sandbox_key, addresses, gateways, result))
    worker.start()
    worker.join()
    if 'error' in result:
        raise result['error']
    return result['ifname']


def _configure_in_sandbox(name, sandbox_key, addresses, gateways, result):
    try:
        result['ifname'] = _configure(name, sandbox_key, addresses, gateways)
    except pyroute2.NetlinkError as exc:
        result['error'] = exception.PortError(
            reason='configuring %s in %s failed: %s' % (
                name, sandbox_key, exc))
    except Exception as exc:
        result['error'] = exc


def _configure(name, sandbox_key, addresses, gateways):
    own = os.open('/proc/thread-self/ns/net', os.O_RDONLY)
    try:
        pyroute2.netns.setns(sandbox_key, flags=0, fork=False)
        try:
            return _configure_here(name, addresses, gateways)
        finally:
            pyroute2.netns.setns(own, fork=False)
    finally:
        os.close(own)


def _configure_here(name, addresses, gateways):
    with pyroute2.IPRoute() as ns:
        index = _index(ns, name)
        ifname = _first_free_eth(ns)
        ns.link('set', index=index, ifname=ifname)
        for cidr in addresses:
            iface = ipaddress.ip_interface(cidr)
            kwargs = {'flags': _nodad()} if iface.version == 6 else {}
            ns.addr('add', index=index, address=str(iface.ip),
                    prefixlen=iface.network.prefixlen, **kwargs)
        ns.link('set', index=index, state='up')
        for gateway in gateways:
            family = socket.AF_INET6 if ':' in gateway else socket.AF_INET
            try:
                ns.route('add', family=family, gateway=gateway, oif=index)
            except pyroute2.NetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise
    return ifname
