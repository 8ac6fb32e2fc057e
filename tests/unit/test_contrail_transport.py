"""The Contrail backend's plain-HTTP transport (libcurl) against a real
HTTP server on loopback: what it sends, what vnc_api reads back, and the
requests exceptions its failures become."""

import http.client
import http.server
import json
import socket
import threading
import time

import pytest
import requests

from opencontrail_net.backends.contrail import transport


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        self.server.connections += 1

    def _answer(self):
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else b''
        seen = {'method': self.command, 'path': self.path,
                'headers': dict(self.headers),
                'body': body.decode('utf-8')}
        self.server.seen.append(seen)
        action = self.server.action
        if action == 'hold':
            self.server.released.wait(self.server.hold)
        if action == 'drop':
            self.close_connection = True
            return
        reply = json.dumps(seen).encode()
        try:
            self.send_response(self.server.status, 'Fine Indeed')
            self.send_header('Content-Type',
                             'application/json; charset="UTF-8"')
            self.send_header('X-Answer', 'yes')
            self.send_header('Content-Length', str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)
        except (BrokenPipeError, ConnectionResetError):
            # A held answer's client has given up (the timeout test).
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = _answer


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    srv.daemon_threads = True
    srv.seen, srv.connections, srv.status = [], 0, 200
    srv.action, srv.hold = None, 0
    srv.released = threading.Event()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    srv.url = 'http://127.0.0.1:%d' % srv.server_address[1]
    try:
        yield srv
    finally:
        srv.released.set()
        srv.shutdown()
        srv.server_close()
        thread.join(5)


@pytest.fixture
def curl():
    t = transport.CurlTransport('test-agent/1')
    try:
        yield t
    finally:
        t.close()


def test_get_with_params_headers_and_answer(server, curl):
    r = curl.request('GET', server.url + '/virtual-networks',
                     params={'parent_id': 'a b', 'detail': 'True'},
                     headers={'X-Contrail-Useragent': 'h1',
                              'Content-type': 'application/json'},
                     timeout=(2, 5), allow_redirects=True)
    assert isinstance(r, requests.Response)
    assert (r.status_code, r.reason) == (200, 'Fine Indeed')
    assert r.headers['x-answer'] == 'yes'
    assert r.encoding == 'UTF-8'
    seen = r.json()
    assert seen['method'] == 'GET'
    assert seen['path'] == '/virtual-networks?parent_id=a+b&detail=True'
    assert seen['headers']['X-Contrail-Useragent'] == 'h1'
    assert seen['headers']['User-Agent'] == 'test-agent/1'
    assert 'Expect' not in seen['headers']
    assert r.text == json.dumps(seen)


@pytest.mark.parametrize('method', ['POST', 'PUT', 'DELETE'])
def test_bodies_are_sent_at_once(server, curl, method):
    # Past 1 KiB libcurl would ask "Expect: 100-continue" and wait a
    # second for an answer the API server never sends.
    body = json.dumps({'virtual-network': {'name': 'x' * 4000}})
    start = time.monotonic()
    r = curl.request(method, server.url + '/virtual-network',
                     data=body, headers={'Content-Type': 'application/json'},
                     timeout=(2, 5))
    assert time.monotonic() - start < 0.5
    assert r.status_code == 200
    assert server.seen[-1]['method'] == method
    assert server.seen[-1]['body'] == body
    assert 'Expect' not in server.seen[-1]['headers']


def test_bytes_body_and_error_status_are_answers(server, curl):
    server.status = 404
    r = curl.request('POST', server.url + '/fqname-to-id', data=b'{"a": 1}',
                     timeout=(2, 5))
    assert r.status_code == 404
    assert server.seen[-1]['body'] == '{"a": 1}'


def test_one_connection_is_kept_alive(server, curl):
    for _ in range(5):
        assert curl.request('GET', server.url + '/',
                            timeout=(2, 5)).status_code == 200
    assert server.connections == 1


def _slow_answers(request, count=10):
    """How many of ``count`` POSTs on one connection, after the first,
    took 35 ms or more."""
    body = json.dumps({'virtual-machine': {'name': 'x'}})
    times = []
    for _ in range(count):
        start = time.monotonic()
        request(body)
        times.append(time.monotonic() - start)
    return sum(t >= 0.035 for t in times[1:])


def test_answer_in_two_writes_waits_for_no_delayed_ack(server, curl):
    # This handler answers as the Contrail API server does: the headers,
    # then the body, in two writes with Nagle's algorithm on. The body
    # waits for the client's acknowledgement of the headers, which Linux
    # delays by at least 40 ms on a connection in use.
    plain = http.client.HTTPConnection('127.0.0.1', server.server_address[1],
                                       timeout=5)

    def plainly(body):
        plain.request('POST', '/virtual-machines', body=body.encode(),
                      headers={'Content-Type': 'application/json'})
        plain.getresponse().read()
    try:
        # The case is real here: a client that acknowledges late waits.
        assert _slow_answers(plainly) >= 7
    finally:
        plain.close()

    def curled(body):
        r = curl.request('POST', server.url + '/virtual-machines', data=body,
                         headers={'Content-Type': 'application/json'},
                         timeout=(2, 5))
        assert r.status_code == 200
    # libcurl's answers do not (a slow machine may delay one).
    assert _slow_answers(curled) <= 1
    assert server.connections == 2


def test_requests_session_answers_wait_for_no_delayed_ack(server):
    # Over TLS or through a proxy the requests go through requests: its
    # session's connections acknowledge the answers at once as well.
    def posting(session):
        def post(body):
            r = session.post(server.url + '/virtual-machines', data=body,
                             headers={'Content-Type': 'application/json'},
                             timeout=(2, 5))
            assert r.status_code == 200
        return post
    with requests.Session() as plain:
        assert _slow_answers(posting(plain)) >= 7
    with requests.Session() as quick:
        transport.quick_acks(quick)
        assert _slow_answers(posting(quick)) <= 1
        # Its proxies' connections too, made when first asked for.
        adapter = quick.get_adapter(server.url)
        manager = adapter.proxy_manager_for('http://127.0.0.1:3128')
        assert manager.connection_from_url(server.url).ConnectionCls is \
            transport._QuickHTTPConnection
        assert adapter.proxy_manager_for('http://127.0.0.1:3128') is manager
    assert server.connections == 2


def test_refused_is_a_connection_error(curl):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    # Nobody listens there now.
    with pytest.raises(requests.exceptions.ConnectionError) as info:
        curl.request('GET', 'http://127.0.0.1:%d/' % port, timeout=(2, 5))
    assert not isinstance(info.value, requests.exceptions.Timeout)
    assert 'GET http://127.0.0.1:%d/' % port in str(info.value)


def test_no_answer_in_time_is_a_read_timeout_on_a_reused_connection(
        server, curl):
    # The first request opens the connection; the second, on it, has no
    # connect of its own: its silence is still a read timeout (vnc_api
    # sends a ConnectionError again, never a read timeout).
    assert curl.request('GET', server.url + '/', timeout=(2, 5)).ok
    server.action, server.hold = 'hold', 3
    start = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        curl.request('POST', server.url + '/virtual-networks', data='{}',
                     timeout=(1.0, 0.4))
    # Within the read timeout, which bounds the whole request: the driver
    # sets it to what is left of the Docker call's time.
    assert 0.35 < time.monotonic() - start < 0.9
    assert len(server.seen) == 2


def test_closed_without_an_answer_is_a_connection_error(server, curl):
    server.action = 'drop'
    with pytest.raises(requests.exceptions.ConnectionError):
        curl.request('POST', server.url + '/virtual-networks', data='{}',
                     timeout=(2, 5))


def test_json_argument_is_refused(server, curl):
    with pytest.raises(ValueError):
        curl.request('POST', server.url + '/', json={'a': 1})
    assert server.seen == []


def test_closed_on_a_reused_connection_is_sent_once_more(server, curl):
    # libcurl sends a request once more, on a fresh connection, when a
    # kept-alive one closes before any answer (the server may have closed
    # it as idle just then); a fresh connection's is not sent again.
    # vnc_api then sends it once more itself: three at most.
    assert curl.request('GET', server.url + '/', timeout=(2, 5)).ok
    server.action = 'drop'
    with pytest.raises(requests.exceptions.ConnectionError):
        curl.request('POST', server.url + '/virtual-networks', data='{}',
                     timeout=(2, 5))
    assert [s['method'] for s in server.seen] == ['GET', 'POST', 'POST']
    assert server.connections == 2
    with pytest.raises(requests.exceptions.ConnectionError):
        curl.request('POST', server.url + '/virtual-networks', data='{}',
                     timeout=(2, 5))
    assert len(server.seen) == 4


@pytest.mark.parametrize('tls,proxies,curl', [
    (None, {}, True),
    ((True, None), {}, False),
    (None, {'http': 'http://proxy.example:3128'}, False),
])
def test_libcurl_sends_plain_http_without_a_proxy(tls, proxies, curl):
    session = requests.Session()
    send = transport.sender(session, tls, proxies)
    if curl:
        assert isinstance(send.__self__, transport.CurlTransport)
        assert send.__self__.user_agent == session.headers['User-Agent']
        send.__self__.close()
    else:
        assert send == session.request
        # Its connections acknowledge answers at once.
        for scheme in ('http://', 'https://'):
            pools = session.get_adapter(scheme).poolmanager
            assert pools.pool_classes_by_scheme == transport._QUICK_POOLS
