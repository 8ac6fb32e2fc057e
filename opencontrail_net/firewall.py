"""Every nftables operation of the driver, through libnftables' JSON API.

The driver keeps one table of its own, ``inet opencontrail_net``, and
touches no other. Its rules carry comments that say whose they are:

- ``net <network ID>`` in ``postrouting``: the network's masquerade;
- ``ep <endpoint ID> <network ID[:12]> <t|u|s><host port>><port>`` in
  ``publish``: one published port of one endpoint, one rule per family;
- ``allow <network ID[:32]> <network ID[:32]>`` in ``forward``: two
  networks that may talk (``-o opencontrail.allow``), the IDs in order.

So rules are removed exactly, and found again after a restart. The
``nftables`` module is Debian's ``python3-nftables`` (libnftables' own
binding): rules are JSON documents, not command lines.
"""

import importlib.util
import ipaddress
import os
import shlex
import shutil
import subprocess
import sys
import threading

from oslo_log import log as logging

from opencontrail_net import exception
from opencontrail_net import model

LOG = logging.getLogger(__name__)

FAMILY = 'inet'
TABLE = 'opencontrail_net'
PUBLISH = 'publish'
POSTROUTING = 'postrouting'
FORWARD = 'forward'
INPUT = 'input'
# Every bridge of the driver is named so; Docker's own bridges so.
OUR_BRIDGES = 'ocbr*'
DOCKER_BRIDGES = ('docker0', 'br-*')
_LETTERS = {'tcp': 't', 'udp': 'u', 'sctp': 's'}
_BY_LETTER = {v: k for k, v in _LETTERS.items()}
# How much of a network ID an allow rule's comment keeps (nftables keeps
# 128 bytes of a comment).
ALLOW_TAG = 32
# Where a -p without a host port takes one, as Docker's bridge does.
EPHEMERAL = (49153, 60999)


# Where distributions install libnftables' own binding (Debian's
# python3-nftables). No PyPI package carries it, and a virtualenv does not
# see it; it is pure Python over ctypes, so any Python 3 can load it.
SYSTEM_BINDINGS = ('/usr/lib/python3/dist-packages/nftables',)


def load_binding(paths=SYSTEM_BINDINGS):
    """The ``nftables`` module: the importable one, else the system's."""
    try:
        import nftables
        return nftables
    except ImportError as exc:
        missing = exc
    for path in paths:
        init = os.path.join(path, '__init__.py')
        if not os.path.exists(init):
            continue
        spec = importlib.util.spec_from_file_location(
            'nftables', init, submodule_search_locations=[path])
        module = importlib.util.module_from_spec(spec)
        sys.modules['nftables'] = module
        try:
            spec.loader.exec_module(module)
        except Exception:
            del sys.modules['nftables']
            raise
        return module
    raise exception.PortError(
        reason='the nftables Python module is missing (%s; not in %s '
        'either): install Debian\'s python3-nftables, or set [bridge] '
        'firewall = false to publish no ports and masquerade nothing'
        % (missing, ', '.join(paths)))


def _load():
    module = load_binding()
    LOG.info('nftables: libnftables\' Python binding from %s',
             os.path.dirname(module.__file__))
    return module.Nftables()


def _rule(chain, comment, expr):
    return {'add': {'rule': {'family': FAMILY, 'table': TABLE,
                             'chain': chain, 'comment': comment,
                             'expr': expr}}}


def _match(left, right, op='=='):
    return {'match': {'op': op, 'left': left, 'right': right}}


def _payload(protocol, field):
    return {'payload': {'protocol': protocol, 'field': field}}


def _meta(key):
    return {'meta': {'key': key}}


def _prefix(cidr):
    net = ipaddress.ip_network(cidr, strict=False)
    return {'prefix': {'addr': str(net.network_address),
                       'len': net.prefixlen}}


def _ip(version):
    return 'ip' if version == 4 else 'ip6'


class Firewall:
    """The driver's nftables table: made at start, changed in batches."""

    def __init__(self, docker_user=()):
        self._nft = None
        # libnftables keeps state per context: one caller at a time. The
        # lock also makes a check of free host ports and the rules that
        # take them one step.
        self.lock = threading.RLock()
        # Docker's iptables and ip6tables, where dockerd manages them: our
        # accepts (DockerUser, one per family).
        self.docker_user = list(docker_user)
        # The table as the last change left it (libnftables' JSON list),
        # to put back when someone flushed it (``restore``).
        self._snapshot = None

    def _run(self, commands, change=True):
        with self.lock:
            if self._nft is None:
                nft = _load()
                nft.set_json_output(True)
                nft.set_handle_output(True)
                self._nft = nft
            rc, out, err = self._nft.json_cmd({'nftables': commands})
            if rc != 0:
                raise exception.PortError(reason='nftables: %s' % (
                    err.strip() or 'error %d' % rc))
            if change:
                self._snapshot = self._list()
        return out

    def _list(self):
        """Our whole table, as libnftables lists it (JSON objects)."""
        cmd = [{'list': {'table': {'family': FAMILY, 'name': TABLE}}}]
        rc, out, _err = self._nft.json_cmd({'nftables': cmd})
        return out.get('nftables', []) if rc == 0 else None

    def intact(self):
        """Whether the table still has its localhost guard (the input
        chain's two rules): False after ``nft flush ruleset`` (Debian's
        nftables.conf begins so) or a flush of the table."""
        cmd = [{'list': {'chain': {'family': FAMILY, 'table': TABLE,
                                   'name': INPUT}}}]
        with self.lock:
            if self._nft is None:
                return True     # Nothing made yet.
            rc, out, _err = self._nft.json_cmd({'nftables': cmd})
        if rc != 0:
            return False
        return sum(1 for item in out.get('nftables', []) if 'rule' in item
                   and item['rule'].get('comment') == 'localhost') == 2

    def restore(self):
        """Put the table back as the last change left it, in one batch;
        the number of rules put back (None: nothing known to restore)."""
        with self.lock:
            snapshot = self._snapshot
            if not snapshot:
                return None
            cmds = [{'add': {'table': {'family': FAMILY, 'name': TABLE}}},
                    {'delete': {'table': {'family': FAMILY, 'name': TABLE}}}]
            rules = 0
            for item in snapshot:
                for kind in ('table', 'chain', 'rule'):
                    if kind in item:
                        obj = {k: v for k, v in item[kind].items()
                               if k != 'handle'}
                        cmds.append({'add': {kind: obj}})
                        rules += kind == 'rule'
            self._run(cmds)
            return rules

    def ensure(self):
        """Make the table and its chains; keep rules that are there."""
        base = {'family': FAMILY, 'table': TABLE, 'type': 'nat',
                'policy': 'accept'}
        jump = [_match({'fib': {'result': 'type', 'flags': ['daddr']}},
                       'local'),
                {'jump': {'target': PUBLISH}}]
        cmds = [{'add': {'table': {'family': FAMILY, 'name': TABLE}}}]
        for name, hook, prio in (('prerouting', 'prerouting', -100),
                                 ('output', 'output', -100),
                                 (POSTROUTING, 'postrouting', 100)):
            cmds.append({'add': {'chain': dict(base, name=name, hook=hook,
                                               prio=prio)}})
        cmds.append({'add': {'chain': {'family': FAMILY, 'table': TABLE,
                                       'name': PUBLISH}}})
        # Traffic to this host's own addresses, from outside and from the
        # host itself (localhost included: see the bridge's route_localnet).
        for name in ('prerouting', 'output'):
            cmds.append({'flush': {'chain': {'family': FAMILY,
                                             'table': TABLE, 'name': name}}})
            cmds.append(_rule(name, 'published ports', jump))
        filters = dict(base, type='filter', prio=0)
        cmds.append({'add': {'chain': dict(filters, name=FORWARD,
                                           hook='forward')}})
        cmds.append({'add': {'chain': dict(filters, name=INPUT,
                                           hook='input')}})
        # No container reaches a service of the host bound to 127.0.0.0/8
        # (the bridges route localnet, for -p 127.0.0.1:...): only answers
        # to the host's own connections come in so.
        cmds.append({'flush': {'chain': {'family': FAMILY, 'table': TABLE,
                                         'name': INPUT}}})
        localnet = [_match(_meta('iifname'), OUR_BRIDGES),
                    _match(_payload('ip', 'daddr'), _prefix('127.0.0.0/8'))]
        cmds.append(_rule(INPUT, 'localhost', localnet + [
            _match({'ct': {'key': 'state'}}, ['established', 'related'],
                   'in'), {'accept': None}]))
        cmds.append(_rule(INPUT, 'localhost', localnet + [{'drop': None}]))
        self._run(cmds)
        # Published ports pass the networks' isolation: first in forward.
        if not any(r.get('comment') == 'published ports'
                   for r in self.rules(FORWARD)):
            rule = _rule(FORWARD, 'published ports', [
                _match({'ct': {'key': 'status'}}, 'dnat', 'in'),
                {'accept': None}])
            self._run([{'insert': rule['add']}])
        for chain in self.docker_user:
            chain.ensure()

    def rules(self, chain=None):
        """The rules of our table (of ``chain``), as libnftables lists them.

        Each has its ``handle`` and ``comment``.
        """
        cmd = [{'list': {'table': {'family': FAMILY, 'name': TABLE}}}]
        with self.lock:
            try:
                out = self._run(cmd, change=False)
            except exception.PortError as exc:
                if self._nft is None:
                    raise
                # Someone deleted the table: nothing of ours is left.
                LOG.warning('Listing table %s %s failed (%s): making it '
                            'again', FAMILY, TABLE, exc)
                self.ensure()
                return []
        return [item['rule'] for item in out.get('nftables', [])
                if 'rule' in item and
                (chain is None or item['rule']['chain'] == chain)]

    def _deletes(self, rules):
        return [{'delete': {'rule': {'family': FAMILY, 'table': TABLE,
                                     'chain': r['chain'],
                                     'handle': r['handle']}}}
                for r in rules]

    def delete(self, rules):
        if rules:
            self._run(self._deletes(rules))
        return len(rules)

    # Networks ---------------------------------------------------------

    @staticmethod
    def network_comment(network_id):
        return 'net %s' % network_id

    def network_rules(self, network_id, bridge, subnets, masquerade):
        """Postrouting rules of a network on bridge ``bridge``.

        - the subnets leave the host under its address (``masquerade``);
        - connections to published ports that come back out of the same
          bridge (container to a port its own network publishes) and
          those from localhost leave with the bridge's address, so the
          answer comes back through the host.
        """
        comment = self.network_comment(network_id)
        oif = _meta('oifname')
        rules = []
        for cidr in subnets:
            ip = _ip(ipaddress.ip_network(cidr).version)
            saddr = _payload(ip, 'saddr')
            if masquerade:
                rules.append(_rule(POSTROUTING, comment, [
                    _match(saddr, _prefix(cidr)),
                    _match(oif, bridge, '!='), {'masquerade': None}]))
            rules.append(_rule(POSTROUTING, comment, [
                _match(saddr, _prefix(cidr)), _match(oif, bridge),
                _match({'ct': {'key': 'status'}}, 'dnat', 'in'),
                {'masquerade': None}]))
        if any(ipaddress.ip_network(c).version == 4 for c in subnets):
            rules.append(_rule(POSTROUTING, comment, [
                _match(_payload('ip', 'saddr'), _prefix('127.0.0.0/8')),
                _match(oif, bridge), {'masquerade': None}]))
        return rules

    def isolation_rules(self, network_id, bridge, internal):
        """Forward rules of a network, as Docker isolates its bridges: no
        traffic to or from another network of the driver or a bridge
        network of Docker's, but through published ports (accepted
        before these); on an internal network, none leaves it."""
        comment = self.network_comment(network_id)
        iif, oif = _meta('iifname'), _meta('oifname')
        if internal:
            return [_rule(FORWARD, comment, [
                _match(iif, bridge), _match(oif, bridge, '!='),
                {'drop': None}]), _rule(FORWARD, comment, [
                    _match(oif, bridge), _match(iif, bridge, '!='),
                    {'drop': None}])]
        rules = [_rule(FORWARD, comment, [
            _match(iif, bridge), _match(oif, bridge, '!='),
            _match(oif, OUR_BRIDGES), {'drop': None}])]
        for theirs in DOCKER_BRIDGES:
            rules.append(_rule(FORWARD, comment, [
                _match(iif, bridge), _match(oif, theirs), {'drop': None}]))
            rules.append(_rule(FORWARD, comment, [
                _match(iif, theirs), _match(oif, bridge), {'drop': None}]))
        return rules

    @staticmethod
    def allow_comment(network_id, other_id):
        a, b = sorted((network_id, other_id))
        return 'allow %s %s' % (a[:ALLOW_TAG], b[:ALLOW_TAG])

    def set_allow(self, network_id, bridge, other_id, other_bridge):
        """Let two networks' bridges forward to each other, past their
        isolation (first in forward), in one batch."""
        comment = self.allow_comment(network_id, other_id)
        iif, oif = _meta('iifname'), _meta('oifname')
        rules = [_rule(FORWARD, comment, [_match(iif, src), _match(oif, dst),
                                          {'accept': None}])
                 for src, dst in ((bridge, other_bridge),
                                  (other_bridge, bridge))]
        with self.lock:
            old = [r for r in self.rules(FORWARD)
                   if r.get('comment') == comment]
            self._run(self._deletes(old) +
                      [{'insert': rule['add']} for rule in rules])

    def allowed_pairs(self):
        """{(ID prefix, ID prefix): [rules]} of the pairs that may talk."""
        found = {}
        for rule in self.rules(FORWARD):
            words = rule.get('comment', '').split()
            if len(words) == 3 and words[0] == 'allow':
                found.setdefault(tuple(words[1:]), []).append(rule)
        return found

    def set_network(self, network_id, bridge, subnets, masquerade,
                    internal=False):
        """Replace the network's rules, in one batch; where dockerd
        manages iptables, accept its traffic in DOCKER-USER too."""
        comment = self.network_comment(network_id)
        nat = [] if internal else self.network_rules(
            network_id, bridge, subnets, masquerade)
        with self.lock:
            old = [r for r in self.rules()
                   if r.get('comment') == comment and
                   r['chain'] in (POSTROUTING, FORWARD)]
            self._run(self._deletes(old) + nat + self.isolation_rules(
                network_id, bridge, internal))
            for chain in self.docker_user:
                chain.set_network(network_id, bridge)

    def remove_network(self, network_id):
        """Remove the network's rules and its endpoints' published ports."""
        comment = self.network_comment(network_id)
        with self.lock:
            gone = [r for r in self.rules()
                    if r.get('comment') == comment or
                    _endpoint_of(r, network_id[:12]) is not None or
                    _allows(r, network_id)]
            count = self.delete(gone)
            for chain in self.docker_user:
                count += chain.remove_network(network_id)
            return count

    def networks(self):
        """IDs of the networks that have rules."""
        found = {r['comment'].split()[1] for r in self.rules()
                 if r.get('comment', '').startswith('net ')}
        for chain in self.docker_user:
            found |= chain.networks()
        return found

    # Published ports --------------------------------------------------

    @staticmethod
    def endpoint_comment(endpoint_id, network_id, mapping):
        return 'ep %s %s %s%d>%d' % (endpoint_id, network_id[:12],
                                     _LETTERS[mapping.proto],
                                     mapping.host_port, mapping.port)

    def published(self):
        """{endpoint ID: [model.PortBinding]} of every published port
        (each on one host port)."""
        found = {}
        for rule in self.rules(PUBLISH):
            parsed = _parse(rule)
            if parsed is None:
                continue
            endpoint_id, mapping = parsed
            have = found.setdefault(endpoint_id, [])
            if mapping not in have:
                have.append(mapping)
        return found

    def publish(self, endpoint_id, network_id, mappings, addresses):
        """Replace the endpoint's published ports, in one batch.

        ``mappings``: [model.PortBinding], each on one host port;
        ``addresses``: {4: container IPv4, 6: container IPv6} (either may
        be None). Returns the rules' count.
        """
        rules = []
        for m in mappings:
            comment = self.endpoint_comment(endpoint_id, network_id, m)
            for version, address in sorted(addresses.items()):
                if address is None:
                    continue
                ip = _ip(version)
                if m.host_ip:
                    if ipaddress.ip_address(m.host_ip).version != version:
                        continue
                    where = _match(_payload(ip, 'daddr'), m.host_ip)
                else:
                    where = _match(_meta('nfproto'),
                                   'ipv4' if version == 4 else 'ipv6')
                rules.append(_rule(PUBLISH, comment, [
                    where, _match(_payload(m.proto, 'dport'), m.host_port),
                    {'dnat': {'family': ip, 'addr': address,
                              'port': m.port}}]))
        with self.lock:
            old = [r for r in self.rules(PUBLISH)
                   if _endpoint_of(r) == endpoint_id]
            self._run(self._deletes(old) + rules)
        return len(rules)

    def unpublish(self, endpoint_id):
        with self.lock:
            return self.delete([r for r in self.rules(PUBLISH)
                                if _endpoint_of(r) == endpoint_id])


class DockerUser:
    """The driver's accepts in DOCKER-USER, Docker's chain for its users.

    Where dockerd manages iptables (every default install) it sets the
    FORWARD policy to DROP, in ip6tables too once it forwards IPv6
    (ip6tables is on by default since Docker 27), and, with br_netfilter,
    even traffic bridged between two ports of one bridge goes through
    FORWARD: Docker accepts its own bridges' traffic there, not a remote
    driver's. An accept in another table does not undo that drop, so the
    driver accepts its bridges' traffic in DOCKER-USER, which Docker jumps
    to first from FORWARD and keeps across its restarts. One instance per
    family: ``iptables`` or ``ip6tables``, the command dockerd uses (legacy
    or nft, as the host chose).

    The operator's own rules come first: ours go at the end of the chain
    (before its ``-j RETURN``, which Docker before 28.2.2 puts last), and
    when an operator's rule is found below ours, ours move
    below it. So a DROP the operator put in DOCKER-USER applies to the
    driver's containers as to Docker's. Each rule's comment names its
    network, and no other rule is touched. The chain is made when
    missing, as Docker makes it, so that a host where the driver starts
    first (before docker.service) is served too.
    """

    CHAIN = 'DOCKER-USER'
    TAG = 'opencontrail-net'
    RETURN = ['-j', 'RETURN']

    def __init__(self, binary='iptables'):
        self.name = binary
        self.binary = shutil.which(binary)

    def _run(self, *args):
        return subprocess.run([self.binary, '-w', '5'] + list(args),
                              capture_output=True, text=True, timeout=30)

    def ensure(self):
        """Make the chain if missing, and put ours after the operator's;
        False (logged) without the command."""
        if self.binary is None:
            LOG.info('No %s command: nothing to accept in %s', self.name,
                     self.CHAIN)
            return False
        if self._run('-S', self.CHAIN).returncode != 0:
            res = self._run('-N', self.CHAIN)
            if res.returncode != 0:
                LOG.warning('Could not make %s chain %s: %s', self.name,
                            self.CHAIN, res.stderr.strip())
                self.binary = None
                return False
            LOG.info('Made %s chain %s (Docker\'s chain for its users) '
                     'for the accepts of this driver\'s bridges', self.name,
                     self.CHAIN)
        self._below_theirs()
        return True

    def rules(self, network_id, bridge):
        """Accept what leaves the bridge (isolation and --internal are
        the nftables table's drops, which win over any accept), and what
        comes back or to a published port."""
        tag = ['-m', 'comment', '--comment',
               '%s %s' % (self.TAG, network_id)]
        return [['-i', bridge] + tag + ['-j', 'ACCEPT'],
                ['-o', bridge, '-m', 'conntrack', '--ctstate',
                 'RELATED,ESTABLISHED,DNAT'] + tag + ['-j', 'ACCEPT']]

    def _chain(self):
        """The chain's rules, each as its arguments after ``-A CHAIN``."""
        res = self._run('-S', self.CHAIN)
        found = []
        for line in res.stdout.splitlines():
            args = shlex.split(line)
            if args[:2] == ['-A', self.CHAIN]:
                found.append(args[2:])
        return found

    def _tag(self, args):
        """The network ID of a rule of ours, else None."""
        if '--comment' not in args:
            return None
        words = args[args.index('--comment') + 1].split()
        if len(words) == 2 and words[0] == self.TAG:
            return words[1]
        return None

    def _reached(self, chain):
        """The rules before the first plain RETURN (none after it is
        ever reached), and whether there is one."""
        if self.RETURN in chain:
            return chain[:chain.index(self.RETURN)], True
        return chain, False

    def _append(self, rule, chain):
        """Add ``rule`` last, but before a RETURN; ``chain`` (the rules as
        ``_chain`` lists them) is kept in step."""
        reached, returns = self._reached(chain)
        if returns:
            args = ['-I', self.CHAIN, str(len(reached) + 1)] + rule
        else:
            args = ['-A', self.CHAIN] + rule
        res = self._run(*args)
        if res.returncode != 0:
            raise exception.PortError(reason='%s %s: %s' % (
                self.name, ' '.join(args), res.stderr.strip()))
        chain.insert(len(reached), rule)

    def _below_theirs(self, chain=None):
        """Move our rules below any rule of the operator's that follows
        one of them (appended after ours): a copy goes last, then the
        first match, the old one, is deleted, so the traffic never
        meets the policy meanwhile. ``chain``: as ``_chain`` lists it,
        if the caller has it."""
        chain = self._chain() if chain is None else chain
        reached, _returns = self._reached(chain)
        ours = [args for args in reached if self._tag(args) is not None]
        if not ours:
            return 0
        first = next(i for i, args in enumerate(reached)
                     if self._tag(args) is not None)
        theirs = [args for args in reached[first:]
                  if self._tag(args) is None]
        if not theirs:
            return 0
        moved = 0
        for rule in ours:
            self._append(rule, chain)
            if self._run('-D', self.CHAIN, *rule).returncode == 0:
                chain.remove(rule)      # the first match: the old one
                moved += 1
        LOG.info('Moved the driver\'s %d accepts in %s %s below the '
                 'operator\'s rules, which come first: %s', moved,
                 self.name, self.CHAIN,
                 '; '.join(' '.join(args) for args in theirs))
        return moved

    def set_network(self, network_id, bridge):
        if self.binary is None:
            return
        chain = self._chain()
        for rule in self.rules(network_id, bridge):
            if self._run('-C', self.CHAIN, *rule).returncode != 0:
                self._append(rule, chain)
        self._below_theirs(chain)

    def _ours(self):
        """(network ID, rule arguments) of each rule of ours."""
        if self.binary is None:
            return []
        return [(self._tag(args), args) for args in self._chain()
                if self._tag(args) is not None]

    def forward_drops(self):
        """Whether FORWARD's policy is DROP (None: cannot tell)."""
        if self.binary is None:
            return None
        res = self._run('-S', 'FORWARD')
        if res.returncode != 0:
            return None
        return '-P FORWARD DROP' in res.stdout.splitlines()

    def remove_network(self, network_id):
        count = 0
        for found, args in self._ours():
            if found == network_id and self._run(
                    '-D', self.CHAIN, *args).returncode == 0:
                count += 1
        return count

    def networks(self):
        return {network_id for network_id, _args in self._ours()}


def _allows(rule, network_id):
    """Whether ``rule`` lets ``network_id`` talk to another network."""
    words = rule.get('comment', '').split()
    return len(words) == 3 and words[0] == 'allow' and \
        network_id[:ALLOW_TAG] in words[1:]


def _endpoint_of(rule, network_tag=None):
    words = rule.get('comment', '').split()
    if len(words) != 4 or words[0] != 'ep':
        return None
    if network_tag is not None and words[2] != network_tag:
        return None
    return words[1]


def _parse(rule):
    """(endpoint ID, model.PortBinding) of a publish rule, or None."""
    endpoint_id = _endpoint_of(rule)
    if endpoint_id is None:
        return None
    spec = rule['comment'].split()[3]
    try:
        host_port, port = (int(p) for p in spec[1:].split('>'))
        proto = _BY_LETTER[spec[0]]
    except (KeyError, ValueError):
        return None
    host_ip = ''
    for expr in rule.get('expr', []):
        match = expr.get('match', {})
        left = match.get('left', {})
        if left.get('payload', {}).get('field') == 'daddr':
            host_ip = str(match.get('right', ''))
    return endpoint_id, model.PortBinding(proto, port, host_ip).at(
        host_port)
