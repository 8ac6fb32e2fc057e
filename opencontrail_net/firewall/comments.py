"""The comments that say whose each rule of the driver's table is, made
and read back.

- ``net <network ID>`` in ``postrouting`` and ``forward``: the network's
  masquerade and isolation;
- ``ep <endpoint ID> <network ID[:12]> <t|u|s><host port>><port>`` in
  ``publish``: one published port of one endpoint, one rule per family;
- ``allow <network ID[:32]> <network ID[:32]>`` in ``forward``: two
  networks that may talk (``-o opencontrail.allow``), the IDs in order.

So rules are removed exactly, and found again after a restart.
"""

from opencontrail_net import model

_LETTERS = {'tcp': 't', 'udp': 'u', 'sctp': 's'}
_BY_LETTER = {v: k for k, v in _LETTERS.items()}
# How much of a network ID an allow rule's comment keeps (nftables keeps
# 128 bytes of a comment).
ALLOW_TAG = 32


def network_comment(network_id):
    return 'net %s' % network_id


def network_of(rule):
    """The network ID of a network's rule, else None."""
    comment = rule.get('comment', '')
    return comment.split()[1] if comment.startswith('net ') else None


def allow_comment(network_id, other_id):
    a, b = sorted((network_id, other_id))
    return 'allow %s %s' % (a[:ALLOW_TAG], b[:ALLOW_TAG])


def allowed_pair(rule):
    """(ID prefix, ID prefix) of an allow rule, else None."""
    words = rule.get('comment', '').split()
    if len(words) == 3 and words[0] == 'allow':
        return tuple(words[1:])
    return None


def allows(rule, network_id):
    """Whether ``rule`` lets ``network_id`` talk to another network."""
    pair = allowed_pair(rule)
    return pair is not None and network_id[:ALLOW_TAG] in pair


def endpoint_comment(endpoint_id, network_id, mapping):
    return 'ep %s %s %s%d>%d' % (endpoint_id, network_id[:12],
                                 _LETTERS[mapping.proto],
                                 mapping.host_port, mapping.port)


def endpoint_of(rule, network_tag=None):
    """The endpoint ID of a publish rule (of the network whose ID begins
    with ``network_tag``), else None."""
    words = rule.get('comment', '').split()
    if len(words) != 4 or words[0] != 'ep':
        return None
    if network_tag is not None and words[2] != network_tag:
        return None
    return words[1]


def published_port(rule):
    """(endpoint ID, model.PortBinding) of a publish rule, or None."""
    endpoint_id = endpoint_of(rule)
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
