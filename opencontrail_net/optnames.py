"""Every option users give a network, once: its names, field and help.

``docker network create`` sets a network's settings with ``-o KEY=VALUE``
(and its own flags), the driver's IPAM pools with ``--ipam-opt
KEY=VALUE``, and route targets also with ``--label KEY=VALUE``. Parsing
(:mod:`~opencontrail_net.netopts`, :mod:`~opencontrail_net.ipam`,
:mod:`~opencontrail_net.labels`), the messages that name an option, the
help texts of the sample config and the README's table (a unit test
holds it to this one) all read :data:`OPTIONS`. The module imports
nothing of the driver's, so any module may read it, config options too.
"""

import dataclasses
import typing

# Where an option is accepted: the flag of "docker network create" that
# carries it, or FLAG for a flag of Docker's own.
OPT = '-o'
IPAM_OPT = '--ipam-opt'
LABEL = '--label'
FLAG = 'flag'


@dataclasses.dataclass(frozen=True)
class Option:
    """One option: the names users give it by and the field it sets.

    ``name`` is the canonical one, which messages use; ``field`` is the
    :class:`~opencontrail_net.model.Network` field it sets, and
    ``pool_field`` the :class:`~opencontrail_net.model.Pool` one where
    ``--ipam-opt`` accepts it. ``compared``: a network asked for again
    with another value of it conflicts with the one there.
    """

    name: str
    aliases: typing.Tuple[str, ...]
    field: str
    where: typing.Tuple[str, ...]
    help: str
    pool_field: typing.Optional[str] = None
    compared: bool = True

    @property
    def names(self):
        """Every name of the option, the canonical one first."""
        return (self.name,) + self.aliases


# In the order option_differences reports differences in; an option's
# names are accepted wherever the option is.
OPTIONS = (
    Option('mtu', ('com.docker.network.driver.mtu',), 'mtu', (OPT,),
           'interface MTU for this network'),
    Option('--ipv6', (), 'enable_ipv6', (FLAG,),
           'IPv6 subnets as well as IPv4 ones'),
    Option('--internal', (), 'internal', (FLAG,),
           'no traffic leaves the network'),
    Option('--subnet/--gateway', (), 'subnets', (FLAG,),
           'the network\'s subnets and their gateways'),
    Option('name', ('opencontrail.name',), 'name', (OPT,),
           'the Contrail network\'s name (default: the Docker network ID)'),
    Option('tenant', ('opencontrail.project',), 'project',
           (OPT, IPAM_OPT), 'Contrail project, PROJECT or DOMAIN:PROJECT',
           pool_field='project'),
    Option('opencontrail.ipam', (), 'ipam', (OPT, IPAM_OPT),
           'the network-ipam: NAME in the project, PROJECT:NAME or '
           'DOMAIN:PROJECT:NAME', pool_field='ipam'),
    Option('opencontrail.network', (), 'existing', (OPT, IPAM_OPT),
           'an existing Contrail network to attach to (and take the pool '
           'of): uuid or DOMAIN:PROJECT:NAME', pool_field='network',
           compared=False),
    Option('rt', ('opencontrail.rt',), 'route_targets', (OPT, LABEL),
           'comma list of route targets ASN:N or A.B.C.D:N'),
    Option('opencontrail.rt.import', (), 'import_targets', (OPT, LABEL),
           'comma list of import-only route targets'),
    Option('opencontrail.rt.export', (), 'export_targets', (OPT, LABEL),
           'comma list of export-only route targets'),
    Option('opencontrail.security_groups', (), 'security_groups', (OPT,),
           'comma list of existing security groups for the network\'s '
           'interfaces, instead of its own group'),
    Option('opencontrail.policies', (), 'policies', (OPT,),
           'comma list of existing network-policies the network gets, in '
           'order: NAME in the project, PROJECT:NAME or DOMAIN:PROJECT:NAME'),
    Option('opencontrail.router', (), 'router', (OPT,),
           'an existing logical-router the network joins (Contrail\'s SNAT '
           'to the outside): NAME in the project, PROJECT:NAME or '
           'DOMAIN:PROJECT:NAME'),
    Option('opencontrail.allow', (), 'allow', (OPT,),
           'comma list of other Docker networks of this driver (names or '
           'IDs) the network exchanges traffic with, both ways, through a '
           'network-policy of the driver\'s own'),
    Option('com.docker.network.bridge.enable_ip_masquerade', (),
           'masquerade', (OPT,), 'false: the bridge port driver does not '
           'masquerade the network\'s subnets'),
    Option('opencontrail.floating_ip_pool', (), 'floating_ip_pool', (OPT,),
           'the floating-ip-pool -p publishes on: DOMAIN:PROJECT:NETWORK:'
           'POOL or PROJECT:NETWORK:POOL'),
)


def accepted(where):
    """``{name: Option}`` of every name accepted at ``where``, in the
    table's order (each option's canonical name before its aliases)."""
    return {name: option for option in OPTIONS if where in option.where
            for name in option.names}


def by_field(field):
    """The option that sets the Network field ``field``."""
    for option in OPTIONS:
        if option.field == field:
            return option
    raise KeyError(field)


def spelling(field, where=OPT):
    """How users give the option of ``field`` at ``where``: ``-o tenant=``.

    For help texts, which name an option as users type it.
    """
    return '%s %s=' % (where, by_field(field).name)
