"""The driver's own nftables table, ``inet opencontrail_net``, through
libnftables' JSON API.

The driver keeps this one table and touches no other. Each rule carries
a comment that says whose it is (see :mod:`.comments`), so rules are
removed exactly, and found again after a restart.
"""

import ipaddress
import threading

from oslo_log import log as logging

from opencontrail_net import exception
from opencontrail_net.firewall import binding
from opencontrail_net.firewall import comments
from opencontrail_net.firewall import nft

LOG = logging.getLogger(__name__)


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
                ctx = binding.context()
                ctx.set_json_output(True)
                ctx.set_handle_output(True)
                self._nft = ctx
            rc, out, err = self._nft.json_cmd({'nftables': commands})
            if rc != 0:
                raise exception.PortError(reason='nftables: %s' % (
                    err.strip() or 'error %d' % rc))
            if change:
                self._snapshot = self._list()
        return out

    def _list(self):
        """Our whole table, as libnftables lists it (JSON objects)."""
        cmd = [{'list': {'table': {'family': nft.FAMILY,
                                   'name': nft.TABLE}}}]
        rc, out, _err = self._nft.json_cmd({'nftables': cmd})
        return out.get('nftables', []) if rc == 0 else None

    def intact(self):
        """Whether the table still has its localhost guard (the input
        chain's two rules): False after ``nft flush ruleset`` (Debian's
        nftables.conf begins so) or a flush of the table."""
        cmd = [{'list': {'chain': {'family': nft.FAMILY,
                                   'table': nft.TABLE, 'name': nft.INPUT}}}]
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
            table = {'family': nft.FAMILY, 'name': nft.TABLE}
            cmds = [{'add': {'table': dict(table)}},
                    {'delete': {'table': dict(table)}}]
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
        base = {'family': nft.FAMILY, 'table': nft.TABLE, 'type': 'nat',
                'policy': 'accept'}
        jump = [nft.match({'fib': {'result': 'type', 'flags': ['daddr']}},
                          'local'),
                {'jump': {'target': nft.PUBLISH}}]
        cmds = [{'add': {'table': {'family': nft.FAMILY,
                                   'name': nft.TABLE}}}]
        for name, hook, prio in (('prerouting', 'prerouting', -100),
                                 ('output', 'output', -100),
                                 (nft.POSTROUTING, 'postrouting', 100)):
            cmds.append({'add': {'chain': dict(base, name=name, hook=hook,
                                               prio=prio)}})
        cmds.append({'add': {'chain': {'family': nft.FAMILY,
                                       'table': nft.TABLE,
                                       'name': nft.PUBLISH}}})
        # Traffic to this host's own addresses, from outside and from the
        # host itself (localhost included: see the bridge's route_localnet).
        for name in ('prerouting', 'output'):
            cmds.append({'flush': {'chain': {'family': nft.FAMILY,
                                             'table': nft.TABLE,
                                             'name': name}}})
            cmds.append(nft.rule(name, 'published ports', jump))
        filters = dict(base, type='filter', prio=0)
        cmds.append({'add': {'chain': dict(filters, name=nft.FORWARD,
                                           hook='forward')}})
        cmds.append({'add': {'chain': dict(filters, name=nft.INPUT,
                                           hook='input')}})
        # No container reaches a service of the host bound to 127.0.0.0/8
        # (the bridges route localnet, for -p 127.0.0.1:...): only answers
        # to the host's own connections come in so.
        cmds.append({'flush': {'chain': {'family': nft.FAMILY,
                                         'table': nft.TABLE,
                                         'name': nft.INPUT}}})
        localnet = [nft.match(nft.meta('iifname'), nft.OUR_BRIDGES),
                    nft.match(nft.payload('ip', 'daddr'),
                              nft.prefix('127.0.0.0/8'))]
        cmds.append(nft.rule(nft.INPUT, 'localhost', localnet + [
            nft.match({'ct': {'key': 'state'}}, ['established', 'related'],
                      'in'), {'accept': None}]))
        cmds.append(nft.rule(nft.INPUT, 'localhost',
                             localnet + [{'drop': None}]))
        self._run(cmds)
        # Published ports pass the networks' isolation: first in forward.
        if not any(r.get('comment') == 'published ports'
                   for r in self.rules(nft.FORWARD)):
            rule = nft.rule(nft.FORWARD, 'published ports', [
                nft.match({'ct': {'key': 'status'}}, 'dnat', 'in'),
                {'accept': None}])
            self._run([{'insert': rule['add']}])
        for chain in self.docker_user:
            chain.ensure()

    def rules(self, chain=None):
        """The rules of our table (of ``chain``), as libnftables lists them.

        Each has its ``handle`` and ``comment``.
        """
        cmd = [{'list': {'table': {'family': nft.FAMILY,
                                   'name': nft.TABLE}}}]
        with self.lock:
            try:
                out = self._run(cmd, change=False)
            except exception.PortError as exc:
                if self._nft is None:
                    raise
                # Someone deleted the table: nothing of ours is left.
                LOG.warning('Listing table %s %s failed (%s): making it '
                            'again', nft.FAMILY, nft.TABLE, exc)
                self.ensure()
                return []
        return [item['rule'] for item in out.get('nftables', [])
                if 'rule' in item and
                (chain is None or item['rule']['chain'] == chain)]

    def _deletes(self, rules):
        return [{'delete': {'rule': {'family': nft.FAMILY,
                                     'table': nft.TABLE,
                                     'chain': r['chain'],
                                     'handle': r['handle']}}}
                for r in rules]

    def delete(self, rules):
        if rules:
            self._run(self._deletes(rules))
        return len(rules)

    # Networks ---------------------------------------------------------

    def network_rules(self, network_id, bridge, subnets, masquerade):
        """Postrouting rules of a network on bridge ``bridge``.

        - the subnets leave the host under its address (``masquerade``);
        - connections to published ports that come back out of the same
          bridge (container to a port its own network publishes) and
          those from localhost leave with the bridge's address, so the
          answer comes back through the host.
        """
        comment = comments.network_comment(network_id)
        oif = nft.meta('oifname')
        rules = []
        for cidr in subnets:
            ip = nft.ip(ipaddress.ip_network(cidr).version)
            saddr = nft.payload(ip, 'saddr')
            if masquerade:
                rules.append(nft.rule(nft.POSTROUTING, comment, [
                    nft.match(saddr, nft.prefix(cidr)),
                    nft.match(oif, bridge, '!='), {'masquerade': None}]))
            rules.append(nft.rule(nft.POSTROUTING, comment, [
                nft.match(saddr, nft.prefix(cidr)), nft.match(oif, bridge),
                nft.match({'ct': {'key': 'status'}}, 'dnat', 'in'),
                {'masquerade': None}]))
        if any(ipaddress.ip_network(c).version == 4 for c in subnets):
            rules.append(nft.rule(nft.POSTROUTING, comment, [
                nft.match(nft.payload('ip', 'saddr'),
                          nft.prefix('127.0.0.0/8')),
                nft.match(oif, bridge), {'masquerade': None}]))
        return rules

    def isolation_rules(self, network_id, bridge, internal):
        """Forward rules of a network, as Docker isolates its bridges: no
        traffic to or from another network of the driver or a bridge
        network of Docker's, but through published ports (accepted
        before these); on an internal network, none leaves it."""
        comment = comments.network_comment(network_id)
        iif, oif = nft.meta('iifname'), nft.meta('oifname')
        if internal:
            return [nft.rule(nft.FORWARD, comment, [
                nft.match(iif, bridge), nft.match(oif, bridge, '!='),
                {'drop': None}]), nft.rule(nft.FORWARD, comment, [
                    nft.match(oif, bridge), nft.match(iif, bridge, '!='),
                    {'drop': None}])]
        rules = [nft.rule(nft.FORWARD, comment, [
            nft.match(iif, bridge), nft.match(oif, bridge, '!='),
            nft.match(oif, nft.OUR_BRIDGES), {'drop': None}])]
        for theirs in nft.DOCKER_BRIDGES:
            rules.append(nft.rule(nft.FORWARD, comment, [
                nft.match(iif, bridge), nft.match(oif, theirs),
                {'drop': None}]))
            rules.append(nft.rule(nft.FORWARD, comment, [
                nft.match(iif, theirs), nft.match(oif, bridge),
                {'drop': None}]))
        return rules

    def set_allow(self, network_id, bridge, other_id, other_bridge):
        """Let two networks' bridges forward to each other, past their
        isolation (first in forward), in one batch."""
        comment = comments.allow_comment(network_id, other_id)
        iif, oif = nft.meta('iifname'), nft.meta('oifname')
        rules = [nft.rule(nft.FORWARD, comment, [
            nft.match(iif, src), nft.match(oif, dst), {'accept': None}])
                 for src, dst in ((bridge, other_bridge),
                                  (other_bridge, bridge))]
        with self.lock:
            old = [r for r in self.rules(nft.FORWARD)
                   if r.get('comment') == comment]
            self._run(self._deletes(old) +
                      [{'insert': rule['add']} for rule in rules])

    def allowed_pairs(self):
        """{(ID prefix, ID prefix): [rules]} of the pairs that may talk."""
        found = {}
        for rule in self.rules(nft.FORWARD):
            pair = comments.allowed_pair(rule)
            if pair is not None:
                found.setdefault(pair, []).append(rule)
        return found

    def set_network(self, network_id, bridge, subnets, masquerade,
                    internal=False):
        """Replace the network's rules, in one batch; where dockerd
        manages iptables, accept its traffic in DOCKER-USER too."""
        comment = comments.network_comment(network_id)
        nat = [] if internal else self.network_rules(
            network_id, bridge, subnets, masquerade)
        with self.lock:
            old = [r for r in self.rules()
                   if r.get('comment') == comment and
                   r['chain'] in (nft.POSTROUTING, nft.FORWARD)]
            self._run(self._deletes(old) + nat + self.isolation_rules(
                network_id, bridge, internal))
            for chain in self.docker_user:
                chain.set_network(network_id, bridge)

    def remove_network(self, network_id):
        """Remove the network's rules and its endpoints' published ports."""
        comment = comments.network_comment(network_id)
        with self.lock:
            gone = [r for r in self.rules()
                    if r.get('comment') == comment or
                    comments.endpoint_of(r, network_id[:12]) is not None or
                    comments.allows(r, network_id)]
            count = self.delete(gone)
            for chain in self.docker_user:
                count += chain.remove_network(network_id)
            return count

    def networks(self):
        """IDs of the networks that have rules."""
        found = {network_id for network_id in map(comments.network_of,
                                                  self.rules())
                 if network_id is not None}
        for chain in self.docker_user:
            found |= chain.networks()
        return found

    # Published ports --------------------------------------------------

    def published(self):
        """{endpoint ID: [model.PortBinding]} of every published port
        (each on one host port)."""
        found = {}
        for rule in self.rules(nft.PUBLISH):
            parsed = comments.published_port(rule)
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
            comment = comments.endpoint_comment(endpoint_id, network_id, m)
            for version, address in sorted(addresses.items()):
                if address is None:
                    continue
                ip = nft.ip(version)
                if m.host_ip:
                    if ipaddress.ip_address(m.host_ip).version != version:
                        continue
                    where = nft.match(nft.payload(ip, 'daddr'), m.host_ip)
                else:
                    where = nft.match(nft.meta('nfproto'),
                                      'ipv4' if version == 4 else 'ipv6')
                rules.append(nft.rule(nft.PUBLISH, comment, [
                    where,
                    nft.match(nft.payload(m.proto, 'dport'), m.host_port),
                    {'dnat': {'family': ip, 'addr': address,
                              'port': m.port}}]))
        with self.lock:
            old = [r for r in self.rules(nft.PUBLISH)
                   if comments.endpoint_of(r) == endpoint_id]
            self._run(self._deletes(old) + rules)
        return len(rules)

    def unpublish(self, endpoint_id):
        with self.lock:
            return self.delete([r for r in self.rules(nft.PUBLISH)
                                if comments.endpoint_of(r) == endpoint_id])
