"""The operator's lists of what Docker users may reach (guard.Guard)."""

import pytest
from oslo_config import cfg

from opencontrail_net.backends.contrail import guard
from opencontrail_net import exception


def make(**lists):
    conf = cfg.ConfigOpts()
    conf.register_opts(guard.CONFIG_OPTS)
    conf.register_opt(cfg.StrOpt('domain', default='default-domain'))
    for name, value in lists.items():
        conf.set_override(name, value)
    conf([])
    return guard.Guard(conf)


@pytest.mark.parametrize('lists, kind, fq_name, allowed', [
    ({}, 'project', ['default-domain', 'anything'], True),
    ({'allowed_projects': ['default-domain:team-a']}, 'project',
     ['default-domain', 'team-a'], True),
    ({'allowed_projects': ['team-a']}, 'project',
     ['default-domain', 'team-a'], True),              # domain filled in
    ({'allowed_projects': ['default-domain:team-a']}, 'project',
     ['default-domain', 'team-b'], False),
    ({'allowed_projects': ['default-domain:team-*']}, 'project',
     ['default-domain', 'team-b'], True),
    ({'allowed_projects': ['other:team-a']}, 'project',
     ['default-domain', 'team-a'], False),
    ({'allowed_policies': ['team-a:ok-*']}, 'network-policy',
     ['default-domain', 'team-a', 'ok-web'], True),
    ({'allowed_policies': ['team-a:ok-*']}, 'network-policy',
     ['default-domain', 'team-b', 'ok-web'], False),
    # Each list narrows its own kind only.
    ({'allowed_policies': ['team-a:ok-*']}, 'logical-router',
     ['default-domain', 'team-b', 'r1'], True),
    ({'allowed_floating_ip_pools': ['d:p:public:*']}, 'floating-ip-pool',
     ['d', 'p', 'public', 'pool'], True),
])
def test_lists(lists, kind, fq_name, allowed):
    g = make(**lists)
    if allowed:
        g.check(kind, fq_name, 'opt', 'value')
        return
    with pytest.raises(exception.InvalidOption) as err:
        g.check(kind, fq_name, 'opt', 'value')
    assert '([contrail] %s)' % guard.OPTION[kind] in str(err.value)
    assert ':'.join(fq_name) in str(err.value)


@pytest.mark.parametrize('ranges, target, allowed', [
    ([], 'target:64512:5', True),
    (['64512:100-199'], 'target:64512:150', True),
    (['64512:100-199'], 'target:64512:200', False),
    (['64512:100-199'], 'target:64513:150', False),
    (['64512:7'], '64512:7', True),
    (['target:10.1.2.3:1-9'], 'target:10.1.2.3:9', True),
    (['10.1.2.3:1-9'], 'target:10.1.2.4:9', False),
])
def test_route_target_ranges(ranges, target, allowed):
    g = make(allowed_route_targets=ranges)
    if allowed:
        g.check_route_targets([target])
        return
    with pytest.raises(exception.InvalidOption) as err:
        g.check_route_targets([target])
    assert 'allowed_route_targets' in str(err.value)


def test_bad_range_is_a_config_error():
    with pytest.raises(exception.InvalidConfig):
        make(allowed_route_targets=['64512:x-y'])
