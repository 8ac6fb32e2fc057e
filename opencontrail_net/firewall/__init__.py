"""The bridge port driver's firewall: its own nftables table, and its
accepts in Docker's iptables chain DOCKER-USER.

``binding``: loading libnftables' Python binding; ``nft``: the names of
the table and its chains, and its rules' JSON; ``comments``: the rule
comments that say whose each rule is, made and read back; ``table``: the
table itself (``Firewall``); ``docker_user``: DOCKER-USER in iptables
and ip6tables (``DockerUser``).

Exported here is what the bridge port driver uses: the two classes, the
table's name for its log lines, and how much of a network ID an allow
rule keeps, to match the rules against its bridges.
"""

from opencontrail_net.firewall.comments import ALLOW_TAG
from opencontrail_net.firewall.docker_user import DockerUser
from opencontrail_net.firewall.nft import FAMILY
from opencontrail_net.firewall.nft import TABLE
from opencontrail_net.firewall.table import Firewall

__all__ = ['ALLOW_TAG', 'DockerUser', 'FAMILY', 'Firewall', 'TABLE']
