"""opencontrail-net-driver: serve Docker's network driver calls."""

import socket
import sys

from oslo_log import log as logging

from opencontrail_net import config
from opencontrail_net import exception
from opencontrail_net import service

LOG = logging.getLogger(__name__)


def main(argv=None):
    conf = config.CONF
    config.parse_args(sys.argv[1:] if argv is None else argv, conf)
    logging.setup(conf, 'opencontrail-net')
    if not conf.host:
        conf.set_override('host', socket.gethostname())
    try:
        return service.Service(conf).run()
    except exception.OpenContrailNetError as exc:
        LOG.error('%s', exc)
        print('opencontrail-net-driver: %s' % exc, file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
