"""Errors of the driver; each knows the HTTP status Docker is answered with."""

from typing import Any, Optional


class OpenContrailNetError(Exception):
    """Base of every error the driver reports to Docker."""

    msg_fmt = 'An unknown error occurred'
    code = 500

    def __init__(self, message: Optional[str] = None, **kwargs: Any) -> None:
        self.kwargs = kwargs
        if message is None:
            message = self.msg_fmt % kwargs
        self.message = message
        super().__init__(message)


class InvalidRequest(OpenContrailNetError):
    msg_fmt = 'invalid request: %(reason)s'
    code = 400


class BodyTooLarge(InvalidRequest):
    msg_fmt = ('request body of %(size)s bytes exceeds the limit of '
               '%(limit)d ([DEFAULT] max_request_body)')
    code = 413


class EmptyRequest(InvalidRequest):
    msg_fmt = ('%(call)s came with an empty body: Docker sends a call again '
               'without its body when the driver stopped or restarted in the '
               'middle of it, so nothing was done for this one; run the '
               'command again')


class NotStarted(OpenContrailNetError):
    msg_fmt = '%(call)s was not served: the driver %(reason)s'
    code = 503


class InvalidOption(InvalidRequest):
    msg_fmt = 'invalid value %(value)r for option %(key)s: %(reason)s'


class UnknownCall(OpenContrailNetError):
    msg_fmt = 'unknown call %(call)s'
    code = 404


class NotFound(OpenContrailNetError):
    msg_fmt = '%(kind)s %(id)s not found'
    code = 404


class NetworkNotFound(NotFound):
    msg_fmt = 'network %(id)s not found'


class EndpointNotFound(NotFound):
    msg_fmt = 'endpoint %(id)s not found'


class Conflict(OpenContrailNetError):
    msg_fmt = '%(reason)s'
    code = 409


class AddressInUse(Conflict):
    msg_fmt = 'address %(address)s is already in use in %(pool)s'


class PoolExhausted(Conflict):
    msg_fmt = 'no free address left in %(pool)s'


class HostPortInUse(Conflict):
    msg_fmt = 'host port %(port)s is already published on this host'


class CannotPublish(OpenContrailNetError):
    msg_fmt = 'cannot publish ports: %(reason)s'
    code = 400


class BackendUnavailable(OpenContrailNetError):
    msg_fmt = 'backend unavailable: %(reason)s'
    code = 503


class BackendError(OpenContrailNetError):
    msg_fmt = 'backend error: %(reason)s'
    code = 500


class PortError(OpenContrailNetError):
    msg_fmt = 'host interface error: %(reason)s'
    code = 500


class SocketInUse(OpenContrailNetError):
    msg_fmt = ('socket %(path)s is served%(by)s: another instance of the '
               'driver (or another program) runs on it; stop it first, or '
               'give this one another socket_path')


class InvalidConfig(OpenContrailNetError):
    msg_fmt = 'invalid %(option)s %(value)r: %(reason)s'


class PluginLoadError(OpenContrailNetError):
    msg_fmt = ('cannot load %(kind)s %(name)r: %(reason)s '
               '(installed: %(choices)s)')


class DockerUnavailable(OpenContrailNetError):
    msg_fmt = 'Docker Engine API at %(url)s: %(reason)s'
    code = 503


class AuditUnsure(OpenContrailNetError):
    msg_fmt = 'the audit repairs nothing: %(reason)s'
    code = 503


class AuditStopped(AuditUnsure):
    """Unsure after some repairs: ``done`` lists them, and what was left."""
    msg_fmt = 'the audit stopped, repairing nothing more: %(reason)s'

    def __init__(self, done=(), **kwargs):
        super().__init__(**kwargs)
        self.done = list(done)
