"""The ``[contrail]`` options: the API server, TLS, Keystone, names and
timeouts of the contrail backend."""

from oslo_config import cfg

from opencontrail_net import optnames

DEFAULT_IPAM = ['default-domain', 'default-project', 'default-network-ipam']

CONFIG_OPTS = [
    cfg.ListOpt('api_server', default=['127.0.0.1'],
                help='Contrail config API servers. With several, vnc_api '
                     'sends each request to the next one in turn, and to '
                     'the others when one does not answer.'),
    cfg.PortOpt('api_port', default=8082, help='Config API port.'),
    cfg.BoolOpt('use_ssl', default=False,
                help='Talk HTTPS to the API, verifying its certificate '
                     '(against cafile, else the system\'s CAs). The driver '
                     'verifies it with its own HTTP session: nothing is '
                     'written to disk, and /etc/contrail/vnc_api_lib.ini '
                     'is not read.'),
    cfg.StrOpt('cafile',
               help='CA bundle (PEM) to verify the API server with, with '
                    'use_ssl. Unset: the system\'s CAs.'),
    cfg.StrOpt('certfile',
               help='Client certificate (PEM) to present to the API server, '
                    'with use_ssl: for a server (or TLS front) that asks '
                    'for one (mutual TLS).'),
    cfg.StrOpt('keyfile',
               help='Private key (PEM) of certfile, if not in it. Keep it '
                    'readable by root only.'),
    cfg.BoolOpt('insecure', default=False,
                help='With use_ssl, do not verify the API server\'s '
                     'certificate (logged as a warning at start).'),
    cfg.StrOpt('auth_type', default='noauth',
               choices=[('noauth', 'the API server runs without auth'),
                        ('keystone', 'a Keystone v3 token with every '
                                     'request')],
               help='How to authenticate to the config API.'),
    cfg.StrOpt('auth_url',
               help='Keystone v3 identity URL, e.g. '
                    'https://keystone.example:5000/v3. A path alone (such '
                    'as the former default /v3/auth/tokens) is joined to '
                    'auth_protocol://auth_host:auth_port. Unset: '
                    'auth_protocol://auth_host:auth_port/v3.'),
    cfg.HostAddressOpt('auth_host', default='127.0.0.1',
                       help='Keystone host, when auth_url is no URL.'),
    cfg.PortOpt('auth_port', default=5000,
                help='Keystone port, when auth_url is no URL.'),
    cfg.StrOpt('auth_protocol', default='http', choices=['http', 'https'],
               help='Keystone protocol, when auth_url is no URL.'),
    cfg.StrOpt('admin_user', default='admin', help='Keystone user.'),
    cfg.StrOpt('admin_password', secret=True, default='',
               help='Keystone password of admin_user. Prefer '
                    'admin_password_file.'),
    cfg.StrOpt('admin_password_file',
               help='File holding the Keystone password of admin_user '
                    '(its first line), owned by root and readable by its '
                    'owner only; read at start. Instead of '
                    'admin_password.'),
    cfg.StrOpt('admin_tenant', default='admin',
               help='Keystone project the token is scoped to.'),
    cfg.StrOpt('user_domain_name', default='Default',
               help='Keystone domain of admin_user (Keystone\'s, not '
                    'Contrail\'s "domain").'),
    cfg.StrOpt('project_domain_name', default='Default',
               help='Keystone domain of admin_tenant (Keystone\'s, not '
                    'Contrail\'s "domain").'),
    cfg.StrOpt('auth_cafile',
               help='CA bundle to verify Keystone\'s certificate with '
                    '(default: the system\'s).'),
    cfg.StrOpt('auth_certfile',
               help='Client certificate (PEM) to present to Keystone.'),
    cfg.StrOpt('auth_keyfile',
               help='Private key of auth_certfile, if not in it.'),
    cfg.BoolOpt('auth_insecure', default=False,
                help='Do not verify Keystone\'s certificate.'),
    cfg.StrOpt('domain', default='default-domain',
               help='Contrail domain of projects given without one.'),
    cfg.StrOpt('project', default='admin',
               help='Project of new networks, PROJECT or DOMAIN:PROJECT; '
                    '"%s" overrides it per network.'
                    % optnames.spelling('project')),
    cfg.StrOpt('network_ipam',
               default=':'.join(DEFAULT_IPAM),
               help='network-ipam of new networks (DOMAIN:PROJECT:NAME); '
                    '"%s" overrides it per network.'
                    % optnames.spelling('ipam')),
    cfg.FloatOpt('timeout', default=10.0, min=1.0,
                 help='Longest time one Docker call may wait for the API '
                      '(and Keystone) before it fails with a clear '
                      'error.'),
    cfg.ListOpt('audit_projects', default=[],
                help='Projects (PROJECT or DOMAIN:PROJECT) whose networks '
                     'the audit checks for networks Docker no longer has; '
                     'empty: the "project" option\'s. Only networks this '
                     'host made are considered.'),
    cfg.StrOpt('floating_ip_pool',
               help='floating-ip-pool that published ports (docker run -p) '
                    'take a floating IP from, DOMAIN:PROJECT:NETWORK:POOL '
                    '(or PROJECT:NETWORK:POOL in "domain"); its network is '
                    'usually a router_external one. Each container with '
                    '-p gets its own floating IP with one port mapping '
                    'per -p (HOSTPORT on the floating IP to the '
                    'container\'s PORT). "%s" overrides it per network. '
                    'Unset: -p is refused on networks without that '
                    'option.' % optnames.spelling('floating_ip_pool')),
    cfg.IntOpt('port_pool_size', default=0, min=0, max=64,
               help='Interfaces (each with its VM, and its virtual-router '
                    'link with the vrouter port driver) this host keeps '
                    'ready in each network it serves, made in the '
                    'background, so that a container start makes one '
                    'request (its instance-ip) instead of four. A pooled '
                    'interface is this host\'s own: it goes with its '
                    'container, and the free ones go at docker network rm '
                    'and with the audit. Networks of the driver\'s IPAM '
                    '(--ipam-driver) and attached existing networks keep '
                    'no pool; an endpoint with --mac-address or its own '
                    'security groups takes no pooled interface. 0: no '
                    'pools.'),
    cfg.IntOpt('retry_interval', default=30, min=0,
               help='Seconds between attempts to delete a network that '
                    'Docker removed while objects of others still held '
                    'it in Contrail (0: only at start). The first attempt '
                    'comes at a random point within this time, the next '
                    'ones 0.8 to 1.2 times it apart.'),
]


# vnc_api's request operations (vnc_api.utils.OP_*), as HTTP methods.
