"""A fake vrouter agent port API (port control), for tests.

It answers like the agent of Tungsten Fabric ``tf-controller``
(``src/vnsw/agent/port_ipc/port_ipc_handler.cc``, ``rest_server.cc``,
``rest_common.cc``), including its quirks:

* routes: ``POST /port``, ``POST /syncports``, ``DELETE|GET /port/<uuid>``
  where the uuid must be lowercase; anything else is 404
  ``{"error":"Unknown Request"}``.  Every status line says "OK".
* errors are HTTP 500 ``{"error":"{ <text> }"}``; the texts are the agent's.
* ids are read the way boost reads a uuid: a string that is not a uuid becomes
  the nil uuid *without an error*; only a nil ``vn-id`` of a VM port (type
  other than 1 and 2) is refused ("Invalid VN uuid").
* an array is all or none, but the agent answers ``200 {}`` even when it
  refused the array.
* a port is stored as the agent stores it: addresses parsed ('' becomes
  ``0.0.0.0`` / ``::``), vlan ids in 16 bits (-1 becomes 65535), type 0, 1 or
  2.  Posting a port again for the same VM keeps the first port's fields.
* the port file ``<ports_dir>/<uuid>`` is written only if absent (never
  overwritten); if it cannot be written the port is not added, yet the answer
  is ``200 {}``.  ``DELETE`` removes the file even for an unknown port.
* ``GET /port/<uuid>`` is 404 ``{ Not Found }`` until the port is ready
  (``ready_delay`` seconds after it was added, and the ``ipam`` callable gives
  addresses for it).

Test controls: ``ports``, ``requests``, ``set_down()``, ``load_ports_dir()``
(the agent's start), ``run_stale_cleanup()``, ``refusal``.
"""

import http.server
import ipaddress
import json
import os
import re
import threading
import time

from tests.fakes import httpfake

AGENT_AUTHOR = '/usr/bin/contrail-vrouter-agent'
NIL_UUID = '00000000-0000-0000-0000-000000000000'
DEFAULT_IPV4 = '10.0.0.252'

_UUID_RE = (r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-'
            r'[0-9a-f]{12}')
_PORT_PATH = re.compile(r'/port/(%s)' % _UUID_RE)
_ANY_CASE_UUID = re.compile(_UUID_RE, re.IGNORECASE)
# isspace() of the C locale: what an istream skips before each character.
_C_SPACE = ' \t\n\v\f\r'
_MAC_GROUP = r'[ \t\n\v\f\r]*([+-][0-9a-fA-F]|[0-9a-fA-F]{1,2})'
_MAC_RE = re.compile(':'.join([_MAC_GROUP] * 6))

VM_PORT, NAMESPACE_PORT, REMOTE_PORT = 0, 1, 2
_INVALID_VLAN = 0xffff


def agent_uuid(text):
    """Read ``text`` as ``StringToUuid`` does; the nil uuid if it fails.

    boost's ``operator>>`` reads 36 characters, skipping white space before
    each, case-insensitively, and ignores what follows.
    """
    compact = ''.join(c for c in text if c not in _C_SPACE)[:36]
    if not _ANY_CASE_UUID.fullmatch(compact):
        return NIL_UUID
    return compact.lower()


def agent_mac_ok(mac):
    """``PortIpcHandler::ValidateMac``: 5 colons, parses, not all zero."""
    if not mac or mac.count(':') != 5:
        return False
    # MacAddress::FromString: sscanf("%2hhx:" x 6 "%c") must read exactly 6
    # fields and the string must hold no 'x'; a failed parse is the zero MAC.
    match = _MAC_RE.fullmatch(mac)
    if match is None or 'x' in mac or 'X' in mac:
        return False
    return any(int(g, 16) & 0xff for g in match.groups())


def agent_mac_text(mac):
    """The MAC as ``MacAddress::ToString`` prints it (lowercase, 2 digits)."""
    match = _MAC_RE.fullmatch(mac)
    if match is None:
        return '00:00:00:00:00:00'
    return ':'.join('%02x' % (int(g, 16) & 0xff) for g in match.groups())


def agent_ip4(text):
    """``Ip4Address::from_string`` then ``to_string``; errors give 0.0.0.0."""
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        return '0.0.0.0'


def agent_ip6(text):
    """``Ip6Address::from_string`` then ``to_string`` (inet_ntop's form)."""
    try:
        addr = ipaddress.IPv6Address(text)
    except ValueError:
        return '::'
    packed = addr.packed
    words = [int.from_bytes(packed[i:i + 2], 'big') for i in range(0, 16, 2)]
    if addr.scope_id is None and not any(words[:5]):
        # glibc prints embedded IPv4 for mapped and compatible addresses.
        tail = str(ipaddress.IPv4Address(packed[12:]))
        if words[5] == 0xffff:
            return '::ffff:' + tail
        if words[5] == 0 and words[6] != 0:
            return '::' + tail
    return str(addr)


def _json_int(value):
    # rapidjson's IsInt(): an integer that fits in 32 bits (not a bool, not
    # a float).
    return (isinstance(value, int) and not isinstance(value, bool)
            and -2 ** 31 <= value < 2 ** 31)


def _boost_time(now=None):
    """``duration_usecs_to_string(UTCTimestampUsec())``."""
    usecs = int((time.time() if now is None else now) * 1000000)
    secs, frac = divmod(usecs, 1000000)
    mins, secs = divmod(secs, 60)
    hours, mins = divmod(mins, 60)
    text = '%02d:%02d:%02d' % (hours, mins, secs)
    return text + ('.%06d' % frac if frac else '')


def _pretty(obj):
    # rapidjson PrettyWriter: 4-space indent, "key": value, no final newline.
    return json.dumps(obj, indent=4, ensure_ascii=False)


def _compact(obj):
    # rapidjson Writer, used for error answers.
    return json.dumps(obj, separators=(',', ':'), ensure_ascii=False)


def _first_wins(pairs):
    # rapidjson's HasMember()/operator[] find the first of duplicate keys.
    result = {}
    for key, value in pairs:
        result.setdefault(key, value)
    return result


def _no_constant(name):
    raise ValueError('not JSON: %s' % name)


def _parse_json(text):
    return json.loads(text, object_pairs_hook=_first_wins,
                      parse_constant=_no_constant)


def sys_class_net_exists(name):
    """Whether the host has an interface called ``name`` (if_nametoindex)."""
    if not name or '/' in name or name in ('.', '..'):
        return False
    return os.path.exists(os.path.join('/sys/class/net', name))


def default_ipam(port):
    """Addresses the fake reports once a port is ready.

    The port's own IPv4 (or 10.0.0.252 when it has none) in a /24 whose
    gateway is .254 and DNS .253 (Contrail's defaults).
    """
    ip = port['ip-address']
    if ip == '0.0.0.0':
        ip = DEFAULT_IPV4
    net = ipaddress.IPv4Network(ip + '/24', strict=False)
    return {'ip-address': ip, 'plen': 24,
            'gateway': str(net.network_address + 254),
            'dns-server': str(net.network_address + 253)}


def make_entry(d, check_port=False, interface_exists=sys_class_net_exists):
    """``MakeAddVmiUuidRequest``: return (entry, None) or (None, error)."""
    def uuid_member(name):
        value = d.get(name)
        if not isinstance(value, str):
            raise _Invalid('Invalid or missing data for <%s>' % name)
        return agent_uuid(value)

    def string_member(name):
        value = d.get(name)
        if not isinstance(value, str):
            raise _Invalid('Invalid or missing field for <%s>' % name)
        return value

    def int_member(name):
        value = d.get(name)
        if not _json_int(value):
            raise _Invalid('Invalid or missing field for <%s>' % name)
        return value & 0xffffffff

    try:
        vmi = uuid_member('id')
        vm = uuid_member('instance-id')
        vn = uuid_member('vn-id')
        project = uuid_member('vm-project-id')
        vm_name = string_member('display-name')
        ip4 = agent_ip4(string_member('ip-address'))
        ip6 = agent_ip6(string_member('ip6-address'))
        val = int_member('type')
        ptype, link_state = VM_PORT, 1
        if val == 1:
            ptype = NAMESPACE_PORT
        elif val == 2:
            ptype, link_state = REMOTE_PORT, 0
        if ptype == VM_PORT and vn == NIL_UUID:
            raise _Invalid('Invalid VN uuid')
        ifname = string_member('system-name')
        if ptype != REMOTE_PORT and check_port \
                and not interface_exists(ifname):
            raise _Invalid('Interface does not exist in OS')
        mac = string_member('mac-address')
        if not agent_mac_ok(mac):
            raise _Invalid('Invalid MAC, Use xx:xx:xx:xx:xx:xx format')
        rx_vlan = int_member('rx-vlan-id')
        tx_vlan = int_member('tx-vlan-id')
        if rx_vlan != _INVALID_VLAN and tx_vlan == _INVALID_VLAN - 1:
            raise _Invalid('Invalid request. RX (isolated) vlan set, '
                           'but TX vlan not set')
    except _Invalid as exc:
        return None, str(exc)
    vhostuser = d.get('vhostuser-mode')
    vhostuser = vhostuser & 0xff if _json_int(vhostuser) else 0
    if _json_int(d.get('link-state')):
        link_state = d['link-state'] & 0xff
    entry = {
        'id': vmi,
        'instance-id': vm,
        'display-name': vm_name,
        'ip-address': ip4,
        'ip6-address': ip6,
        'vn-id': vn,
        'vm-project-id': project,
        'mac-address': mac,
        'system-name': ifname,
        'type': ptype,
        'rx-vlan-id': rx_vlan & 0xffff,
        'tx-vlan-id': tx_vlan & 0xffff,
        'vhostuser-mode': vhostuser,
    }
    if ptype == REMOTE_PORT:
        entry['link-state'] = link_state
    return entry, None


class _Invalid(Exception):
    pass


class _Slot(object):
    def __init__(self, entry, ready_at, version):
        self.entry = entry
        self.ready_at = ready_at
        self.version = version


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'FakeVrouterAgent'

    def log_message(self, *args):
        pass

    def _body(self):
        if 'chunked' in self.headers.get('Transfer-Encoding', '').lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b';')[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b'\r\n', b'\n', b''):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b''.join(chunks)
        length = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(length) if length else b''

    def _dispatch(self):
        body = self._body()
        status, text = self.server.fake.handle(self.command, self.path, body)
        data = text.encode('utf-8')
        # The agent's status line always says "OK", whatever the code.
        self.send_response(status, 'OK')
        self.send_header('Content-Type', 'application/json; charset=UTF-8')
        self.send_header('Content-Length', str(len(data)))
        if self.close_connection:
            # The client asked for it; saying so keeps it from reusing the
            # connection we are about to close.
            self.send_header('Connection', 'close')
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _dispatch


class FakeAgent(httpfake.ServedFake):
    """An HTTP server on 127.0.0.1 that behaves like the agent's port API.

    ``ready_delay``: seconds after a port is added before GET finds it.
    ``ipam(port) -> dict or None``: addresses GET reports (``ip-address``,
    ``plen``, ``gateway``, ``dns-server``, optionally ``v6-ip-address``,
    ``v6-gateway``, ``v6-dns-server``); None keeps the port not ready.
    ``interface_exists(name) -> bool``: the host check of load_ports_dir.
    ``stale_timeout``: seconds after ``POST /syncports`` before stale ports
    go (the agent's default is 60); None: only run_stale_cleanup() does it.
    """

    handler = _Handler
    thread_name = 'fake-vrouter-agent'

    def __init__(self, ports_dir, ready_delay=0.0, ipam=default_ipam,
                 interface_exists=sys_class_net_exists, stale_timeout=None,
                 author=AGENT_AUTHOR, host='127.0.0.1', port=0):
        self.ports_dir = ports_dir
        self.ready_delay = ready_delay
        self.ipam = ipam
        self.interface_exists = interface_exists
        self.stale_timeout = stale_timeout
        self.author = author
        # While set, every POST /port is refused (500) with this text: the
        # client only builds ports the agent's checks accept, so a test of
        # a refusal needs this to get one through a real driver.
        self.refusal = None
        super().__init__(host, port)
        self._lock = threading.RLock()
        self._slots = {}
        self._version = 0
        self._requests = []
        self._timers = []

    # -- lifecycle ----------------------------------------------------------

    def start(self):
        """Create the ports directories (as the agent does) and listen."""
        os.makedirs(os.path.join(self.ports_dir, 'vm'), exist_ok=True)
        self._listen()
        return self

    def stop(self):
        """Stop listening and cancel pending stale cleanups."""
        for timer in self._timers:
            timer.cancel()
        self._timers = []
        self._unlisten()

    # -- test controls --------------------------------------------------------

    @property
    def ports(self):
        """uuid -> the port as the agent holds it (a copy)."""
        with self._lock:
            return {u: dict(s.entry) for u, s in self._slots.items()}

    @property
    def requests(self):
        """(method, path) of every request received, in order."""
        with self._lock:
            return list(self._requests)

    @property
    def version(self):
        """The agent's port version, raised by each POST /syncports."""
        return self._version

    def port_file(self, vmi_uuid):
        return os.path.join(self.ports_dir, vmi_uuid)

    def load_ports_dir(self, check_port=True, reset=True):
        """Do what the agent does at start: re-add the ports of the files.

        ``reset`` forgets every port first (a restarted agent starts empty).
        Files whose name does not read as a uuid, and directories, are
        skipped; a port whose interface is missing is skipped when
        ``check_port`` (the agent passes ``not vrouter_on_host_dpdk``).
        Returns the uuids added.
        """
        with self._lock:
            if reset:
                self._slots.clear()
                self._version = 0
            before = set(self._slots)
            try:
                names = sorted(os.listdir(self.ports_dir))
            except FileNotFoundError:
                names = []
            for name in names:
                path = os.path.join(self.ports_dir, name)
                if not os.path.isfile(path) or agent_uuid(name) == NIL_UUID:
                    continue
                try:
                    with open(path, 'rb') as handle:
                        raw = handle.read()
                except OSError:
                    continue
                self._add_from_json(raw, check_port=check_port,
                                    write_file=False)
            return sorted(set(self._slots) - before)

    def run_stale_cleanup(self, version=None):
        """``StaleWalk``: drop non-namespace ports older than ``version``."""
        with self._lock:
            if version is None:
                version = self._version
            for vmi, slot in list(self._slots.items()):
                if slot.entry['type'] == NAMESPACE_PORT:
                    continue
                if slot.version < version:
                    self._delete(vmi)

    # -- the API --------------------------------------------------------------

    def handle(self, method, path, body):
        """Answer one request: return (status, body text)."""
        route = path.split('?', 1)[0]
        with self._lock:
            self._requests.append((method, path))
            if method == 'POST' and route == '/port':
                return self._post_port(body)
            if method == 'POST' and route == '/syncports':
                return self._sync()
            match = _PORT_PATH.fullmatch(route)
            if match and method == 'DELETE':
                uuid_ = agent_uuid(match.group(1))
                if uuid_ != NIL_UUID:
                    self._delete(uuid_)
                return 200, '{}'
            if match and method == 'GET':
                return self._get(match.group(1))
        return 404, _compact({'error': 'Unknown Request'})

    def _post_port(self, body):
        if self.refusal is not None:
            return 500, _compact({'error': '{ ' + self.refusal + ' }'})
        ok, err = self._add_from_json(body, check_port=False, write_file=True)
        if ok:
            return 200, '{}'
        return 500, _compact({'error': '{ ' + err + ' }'})

    def _add_from_json(self, raw, check_port, write_file):
        """``AddPortFromJson``: return (answer is success, error text)."""
        # The agent reads the body as a C string.
        text = raw.split(b'\0', 1)[0].decode('utf-8', errors='replace')
        try:
            doc = _parse_json(text)
        except ValueError:
            return False, 'Invalid Json string ==> ' + text
        if isinstance(doc, list):
            entries = []
            for elem in doc:
                if not isinstance(elem, dict):
                    return True, None
                entry, err = make_entry(elem, check_port,
                                        self.interface_exists)
                if entry is None:
                    # The agent gives up on the whole array yet answers 200.
                    return True, None
                entries.append(entry)
            for entry in entries:
                self._add_entry(entry, write_file)
            return True, None
        if not isinstance(doc, dict):
            return False, 'Unexpected Json string ==> ' + text
        entry, err = make_entry(doc, check_port, self.interface_exists)
        if entry is None:
            return False, err
        self._add_entry(entry, write_file)
        return True, None

    def _add_entry(self, entry, write_file):
        """``AddVmiUuidEntry``: write the file if absent, then add."""
        if write_file and not self._write_file(entry):
            # Not added, and the caller still answers 200.
            return
        vmi = entry['id']
        old = self._slots.get(vmi)
        if old is not None \
                and old.entry['instance-id'] == entry['instance-id']:
            # PortSubscribeEntry::Update copies only the version.
            old.version = self._version
            return
        self._slots[vmi] = _Slot(entry, time.monotonic() + self.ready_delay,
                                 self._version)

    def _write_file(self, entry):
        path = self.port_file(entry['id'])
        if os.path.exists(path):
            return True
        data = dict(entry)
        data['author'] = self.author
        data['time'] = _boost_time()
        try:
            with open(path, 'w', encoding='utf-8') as handle:
                handle.write(_pretty(data))
        except OSError:
            return False
        return True

    def _delete(self, vmi):
        """``DeleteVmiUuidEntry``: forget the port and remove its file."""
        self._slots.pop(vmi, None)
        path = self.port_file(vmi)
        if os.path.isfile(path):
            try:
                os.remove(path)
            except OSError:
                pass

    def _sync(self):
        self._version += 1
        if self.stale_timeout is not None:
            timer = threading.Timer(self.stale_timeout,
                                    self.run_stale_cleanup,
                                    args=(self._version,))
            timer.daemon = True
            self._timers.append(timer)
            timer.start()
        return 200, '{}'

    def _get(self, vmi):
        not_found = 404, _compact({'error': '{ Not Found }'})
        uuid_ = agent_uuid(vmi)
        slot = self._slots.get(uuid_)
        if uuid_ == NIL_UUID or slot is None:
            return not_found
        if time.monotonic() < slot.ready_at:
            return not_found
        info = self.ipam(dict(slot.entry)) if self.ipam else None
        if not info:
            return not_found
        entry = slot.entry
        out = {
            'id': entry['id'],
            'instance-id': entry['instance-id'],
            'vn-id': entry['vn-id'],
            'vm-project-id': entry['vm-project-id'],
            'mac-address': agent_mac_text(entry['mac-address']),
            'system-name': entry['system-name'],
            'rx-vlan-id': entry['rx-vlan-id'],
            'tx-vlan-id': entry['tx-vlan-id'],
            'vhostuser-mode': entry['vhostuser-mode'],
        }
        if 'ip-address' in info:
            out['ip-address'] = info['ip-address']
            out['plen'] = info['plen']
            out['dns-server'] = info['dns-server']
            out['gateway'] = info['gateway']
        if 'v6-ip-address' in info:
            out['v6-ip-address'] = info['v6-ip-address']
            out['v6-dns-server'] = info['v6-dns-server']
            out['v6-gateway'] = info['v6-gateway']
        out['author'] = self.author
        out['time'] = _boost_time()
        return 200, _pretty(out)
