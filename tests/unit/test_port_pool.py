"""The port pool's record and choices, without an API server."""

import json
import os

from opencontrail_net.backends.contrail import port_pool
from opencontrail_net import ids
from opencontrail_net import model

NET = 'a' * 64


class Ctx:
    host = 'h1'


def network(**changes):
    return model.Network(**dict(dict(id=NET, project=['d', 'p'],
                                     name=NET), **changes))


def endpoint(**changes):
    return model.Endpoint(**dict(dict(id='e' * 64, network_id=NET),
                                 **changes))


def pool(tmp_path, size=2):
    return port_pool.PortPool(Ctx(), size, str(tmp_path), vrouter=None)


def test_what_a_pooled_interface_serves():
    assert port_pool.serves(network())
    assert port_pool.serves(network(), endpoint())
    # The driver's IPAM and someone else's network keep no pool.
    assert not port_pool.serves(network(own_ipam=True))
    assert not port_pool.serves(network(existing='d:p:theirs'))
    # Its own MAC or groups: an interface of its own.
    assert not port_pool.serves(network(), endpoint(mac='02:00:00:00:00:01'))
    assert not port_pool.serves(network(), endpoint(security_groups=[]))


def test_records_survive_a_new_process(tmp_path):
    rec = dict(port_pool.record(network(), 'h1', 0), state=port_pool.FREE)
    port_pool.Records(str(tmp_path)).write(rec)
    # Another host's record and a torn file are not taken up.
    port_pool.Records(str(tmp_path)).write(dict(
        port_pool.record(network(), 'h2', 0), state=port_pool.FREE))
    with open(os.path.join(str(tmp_path), port_pool.DIRECTORY,
                           'torn.json'), 'w') as f:
        f.write('{"vmi": ')
    again = pool(tmp_path)
    assert again.state() == {NET: (1, 0)}
    taken = again.take(network(), endpoint())
    assert taken['vmi'] == ids.pooled_interface_uuid(NET, 'h1', 0)
    assert taken['mac'] == ids.mac_from_uuid(taken['vmi'])
    # Taken is recorded before it is handed out; asked again, the same.
    assert pool(tmp_path).state() == {NET: (0, 1)}
    assert again.take(network(), endpoint()) is taken
    # None left for another endpoint; given back, it is free again.
    assert again.take(network(), endpoint(id='f' * 64)) is None
    again.give_back(endpoint().id)
    assert pool(tmp_path).state() == {NET: (1, 0)}
    with open(os.path.join(str(tmp_path), port_pool.DIRECTORY,
                           taken['vmi'] + '.json')) as f:
        assert json.load(f)['state'] == port_pool.FREE


def test_no_pool_takes_nothing(tmp_path):
    rec = dict(port_pool.record(network(), 'h1', 0), state=port_pool.FREE)
    port_pool.Records(str(tmp_path)).write(rec)
    off = pool(tmp_path, size=0)
    off.start()
    try:
        assert off.take(network(), endpoint()) is None
        off.want(network())
        assert off._wanted == {}
    finally:
        off.stop()
        if off._thread is not None:
            off._thread.join(5)
            assert not off._thread.is_alive()
