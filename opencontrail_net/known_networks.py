"""The Docker networks this process knows in use, as the backend has them.

Docker networks never change once made: keeping them spares the backend a
lookup on every endpoint call.
"""

import threading

from opencontrail_net import model


class KnownNetworks:
    """model.Network by Docker network ID, read from the backend once."""

    def __init__(self, backend):
        self.backend = backend
        self._networks = {}
        self._lock = threading.Lock()

    def __len__(self):
        return len(self._networks)

    def get(self, network_id):
        """The network, from the backend if it is not known yet."""
        net = self._networks.get(network_id)
        if net is None:
            net = self.backend.get_network(network_id)
            with self._lock:
                self._networks[network_id] = net
        return net

    def at_hand(self, network_id):
        """The network if it is known, else one of the ID alone (all a
        delete needs): never a backend lookup."""
        return self._networks.get(network_id) or model.Network(id=network_id)

    def add(self, net):
        """``net`` is in use; a known network it may talk to learns of it
        (a network read from the backend later knows it by itself)."""
        with self._lock:
            self._networks[net.id] = net
            for peer in net.allowed:
                known = self._networks.get(peer)
                if known is not None and net.id not in known.allowed:
                    known.allowed = known.allowed + [net.id]

    def forget(self, network_id):
        """The network is no longer in use here."""
        with self._lock:
            self._networks.pop(network_id, None)
