"""Where the driver's accepts go in DOCKER-USER (firewall.DockerUser),
against an iptables that keeps its chain in memory: after the operator's
rules, before a RETURN, and moved below a rule of the operator's found
after them. The real iptables under a real dockerd: test_stock_host."""

import subprocess

from opencontrail_net import firewall

NET = 'n' * 64
THEIRS = ['-s', '10.0.0.0/8', '-d', '169.254.169.254/32', '-j', 'DROP']


class Iptables:
    """-S, -C, -A, -I [N], -D and -N of one chain, as iptables does."""

    def __init__(self, rules=()):
        self.rules = [list(r) for r in rules]
        self.calls = []

    def __call__(self, *args):
        self.calls.append(args[0])
        op, rest = args[0], list(args[1:])
        out, rc = '', 0
        if op == '-S':
            out = '-N DOCKER-USER\n' + ''.join(
                '-A DOCKER-USER %s\n' % ' '.join(
                    '"%s"' % a if ' ' in a else a for a in r)
                for r in self.rules)
        elif op == '-C':
            rc = 0 if rest[1:] in self.rules else 1
        elif op == '-A':
            self.rules.append(rest[1:])
        elif op == '-I':
            if rest[1].isdigit():
                self.rules.insert(int(rest[1]) - 1, rest[2:])
            else:
                self.rules.insert(0, rest[1:])
        elif op == '-D':
            if rest[1:] in self.rules:
                self.rules.remove(rest[1:])
            else:
                rc = 1
        return subprocess.CompletedProcess(args, rc, out, '')


def docker_user(rules=()):
    chain = firewall.DockerUser('iptables')
    chain.binary = 'iptables'
    chain._run = Iptables(rules)
    return chain, chain._run


def ours(chain):
    return [i for i, r in enumerate(chain.rules) if '--comment' in r]


def test_after_the_operators_rules():
    user, ipt = docker_user([THEIRS])
    user.set_network(NET, 'ocbr1')
    assert ipt.rules[0] == THEIRS and ours(ipt) == [1, 2]
    # Again: nothing added, nothing moved.
    user.set_network(NET, 'ocbr1')
    assert len(ipt.rules) == 3


def test_before_a_return():
    user, ipt = docker_user([THEIRS, firewall.DockerUser.RETURN])
    user.set_network(NET, 'ocbr1')
    assert ipt.rules[0] == THEIRS and ours(ipt) == [1, 2]
    assert ipt.rules[-1] == ['-j', 'RETURN']


def test_moved_below_a_rule_added_after_them():
    user, ipt = docker_user([firewall.DockerUser.RETURN])
    user.set_network(NET, 'ocbr1')
    ipt.rules.insert(2, THEIRS)          # the operator's, before RETURN
    mine = [ipt.rules[i] for i in ours(ipt)]
    assert user.ensure() is True         # at start
    assert ipt.rules == [THEIRS] + mine + [['-j', 'RETURN']]
    # One listing for a network's rules, whatever it adds and moves.
    ipt.calls.clear()
    user.set_network(NET, 'ocbr1')
    assert ipt.calls.count('-S') == 1


def test_one_listing_at_start():
    """The listing that finds the chain is the one ours are checked in."""
    user, ipt = docker_user([THEIRS])
    user.set_network(NET, 'ocbr1')
    ipt.rules.append(THEIRS[:1] + ['10.1.0.0/16'] + THEIRS[2:])
    ipt.calls.clear()
    assert user.ensure() is True
    assert ipt.calls.count('-S') == 1
    assert [ipt.rules[i] for i in ours(ipt)] == ipt.rules[-2:]


def test_rules_after_a_return_are_not_theirs_to_pass():
    """A rule after the RETURN is never reached: nothing moves for it."""
    user, ipt = docker_user([firewall.DockerUser.RETURN, THEIRS])
    user.set_network(NET, 'ocbr1')
    assert ours(ipt) == [0, 1] and ipt.rules[2] == ['-j', 'RETURN']
