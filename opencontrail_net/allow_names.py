"""The networks ``-o opencontrail.allow`` names, as full Docker network IDs.

netopts checks the option's syntax; here each name is resolved, through
the Docker Engine API where it is not a full ID already.
"""

from opencontrail_net import exception
from opencontrail_net import ids

KEY = 'opencontrail.allow'


def full_ids(docker, names):
    """``names`` (of ``-o opencontrail.allow``) as full Docker IDs.

    A full ID is taken as it is (the backend finds it or refuses it);
    a name or an ID's prefix is Docker's to resolve (``docker``: a
    docker_api.DockerView), and must be a network of this driver.
    """
    value = ','.join(names)
    found = []
    for name in names:
        if ids.is_docker_id(name, network=True):
            found.append(name)
            continue
        try:
            known = docker.network(name)
        except exception.DockerUnavailable as exc:
            raise exception.InvalidOption(
                key=KEY, value=value, reason='%r is no full network ID, '
                'and Docker cannot be asked for it (%s): give the full '
                'ID' % (name, exc))
        if known is None:
            raise exception.InvalidOption(
                key=KEY, value=value,
                reason='Docker has no network %r' % name)
        if known[1] != docker.driver_name:
            raise exception.InvalidOption(
                key=KEY, value=value, reason='network %r is of driver '
                '%s, not of this driver (%s)' % (
                    name, known[1], docker.driver_name))
        found.append(known[0])
    if len(set(found)) != len(found):
        raise exception.InvalidOption(key=KEY, value=value,
                                      reason='a network is named twice')
    return found
