"""Docker against the backend and the host: what is out of step, and repairs.

Docker swallows the errors of DeleteEndpoint, DeleteNetwork and Leave, so
an outage of the driver or of the backend during ``docker rm`` leaves
objects nobody sees. The audit finds them and repairs what it can; it is
used by ``opencontrail-net-manage`` and by the driver itself.

``findings``: the kinds of finding, :class:`Finding` and :class:`Report`;
``compare``: :func:`collect`, the look at Docker, the backend and this
host; ``repairs``: :func:`repair`, which deletes only the driver's own
objects; ``periodic``: the driver's audit thread and its metrics.
Callers import the module that holds what they use.
"""
