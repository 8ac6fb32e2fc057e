"""The contrail backend's pools, against a stub of the API client."""

import ipaddress

from opencontrail_net.backends import contrail
from opencontrail_net.backends.contrail import context
from opencontrail_net.backends.contrail import pools
from tests.conftest import make_conf


class StubApi:
    """The few client calls a default pool's search makes."""

    def __init__(self, kv_pairs):
        self.kv_pairs = kv_pairs

    def fq_name_to_id(self, kind, fq_name):
        return '11111111-2222-3333-4444-555555555555'

    def virtual_networks_list(self, parent_id, detail):
        return []

    def kv_retrieve(self, key=None):
        return self.kv_pairs


def test_an_empty_store_lists_a_pair_of_key_none(tmp_path):
    """The API server lists an empty key-value store as one pair of key
    None: a default pool is found all the same."""
    conf = make_conf(tmp_path)
    conf.register_opts(contrail.CONFIG_OPTS, group='contrail')
    found = pools.Pools(context.Context(conf))._project_subnets(
        StubApi([{'key': None, 'value': None}]),
        ['default-domain', 'p'])
    assert found == []
    taken = pools.POOL_KEY % 'default-domain:p/10.1.0.0/24'
    found = pools.Pools(context.Context(conf))._project_subnets(
        StubApi([{'key': None, 'value': None},
                 {'key': taken, 'value': '{}'}]),
        ['default-domain', 'p'])
    assert found == [ipaddress.ip_network('10.1.0.0/24')]
