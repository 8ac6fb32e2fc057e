"""Docker's iptables chain DOCKER-USER, in both families: the driver's
accepts there, through the ``iptables`` and ``ip6tables`` commands."""

import shlex
import shutil
import subprocess

from oslo_log import log as logging

from opencontrail_net import exception

LOG = logging.getLogger(__name__)


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
        listed = self._run('-S', self.CHAIN)
        if listed.returncode != 0:
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
        else:
            # The listing that found the chain: no second one.
            self._below_theirs(self._parse(listed.stdout))
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
        return self._parse(self._run('-S', self.CHAIN).stdout)

    def _parse(self, listing):
        """The rules of ``iptables -S CHAIN``'s output, as ``_chain``."""
        found = []
        for line in listing.splitlines():
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
