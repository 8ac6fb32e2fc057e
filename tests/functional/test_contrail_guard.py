"""The operator's guardrails for a shared cluster, on the contrail backend
(the fake, or a real server): a network that asks for a project, route
target, policy or existing network outside ``[contrail] allowed_*`` is
refused naming the option, and nothing is made."""

import pytest
from vnc_api import vnc_api

from opencontrail_net import ids
from tests import contrail_target
from tests.functional import conftest
from tests.functional.test_contrail_backend import net_body
from tests.functional.test_contrail_shared import theirs

conftest  # noqa: B018  (fixtures)

pytestmark = pytest.mark.noauth_only


def test_guardrails(fake, driver_factory):
    vnc = contrail_target.vnc_client(fake)
    ok, bad = theirs(vnc, vnc_api.NetworkPolicy, 'ok-pol', 'bad-pol')
    project = contrail_target.PROJECT_NAME
    try:
        drv = conftest.contrail_driver(driver_factory, fake, **{
            'contrail.allowed_projects': 'default-domain:%s' % project,
            'contrail.allowed_route_targets': '64512:100-199',
            'contrail.allowed_policies': '%s:ok-*' % project,
            'contrail.allowed_networks': '%s:none-*' % project}).start()
        cases = [
            ({'tenant': 'someone-else'}, 'tenant', 'project default-domain:'
             'someone-else is not allowed here ([contrail] '
             'allowed_projects)'),
            ({'rt': '64512:300'}, 'rt', 'route target target:64512:300 is '
             'not allowed here ([contrail] allowed_route_targets)'),
            ({'opencontrail.policies': bad.name}, 'opencontrail.policies',
             'network-policy default-domain:%s:%s is not allowed here '
             '([contrail] allowed_policies)' % (project, bad.name)),
        ]
        for n, (generic, key, why) in enumerate(cases):
            body = net_body(90 + n, v6=False, generic=generic)
            fake.reset_requests()
            status, reply = drv.call('NetworkDriver.CreateNetwork', body)
            assert status == 400, reply
            assert key in reply['Err'] and why in reply['Err'], reply
            assert fake.get('virtual-network', ids.network_uuid(
                body['NetworkID'])) is None
            made = [r for r in fake.requests if r[0] == 'POST' and
                    r[1] not in ('/fqname-to-id', '/useragent-kv')]
            assert made == []       # nothing made
        # What the lists allow works as before.
        body = net_body(95, v6=False, generic={
            'rt': '64512:150', 'opencontrail.policies': ok.name})
        drv.ok('NetworkDriver.CreateNetwork', body)
        vn = fake.get('virtual-network', ids.network_uuid(body['NetworkID']))
        assert vn['route_target_list']['route_target'] == ['target:64512:150']
        drv.ok('NetworkDriver.DeleteNetwork', {'NetworkID': body['NetworkID']})
        # An existing network outside allowed_networks is not attached.
        vn = vnc_api.VirtualNetwork('their-net-%s' % contrail_target.RUN,
                                    vnc_api.Project(project))
        vnc.virtual_network_create(vn)
        try:
            body = net_body(96, v6=False, generic={
                'opencontrail.network': vn.uuid})
            status, reply = drv.call('NetworkDriver.CreateNetwork', body)
            assert status == 400 and 'allowed_networks' in reply['Err']
        finally:
            vnc.virtual_network_delete(id=vn.uuid)
    finally:
        for policy in (ok, bad):
            vnc.network_policy_delete(id=policy.uuid)
