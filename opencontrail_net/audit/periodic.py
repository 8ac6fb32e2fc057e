"""The driver's own audit: every ``audit_interval`` seconds, in a thread.

:class:`PeriodicAudit` collects and repairs what two audits in a row saw
out of step, logs each repair, and counts its runs, findings and repairs
in the driver's metrics.

The first audit comes at a random point within the interval, each next
one after 0.8-1.2 x the interval (:mod:`opencontrail_net.jitter`), so
that hosts started together never audit in step. The first audit of a
process, and every :data:`FULL_EVERY`-th after it, looks at every
network of the audited projects: that finds what this host left while
no driver of it ran (a network Docker removed meanwhile). The others
read only the networks of this host: Docker's, those the last audit saw
and those the backend's record of this host names.
"""

import threading

from oslo_log import log as logging

from opencontrail_net.audit import compare
from opencontrail_net.audit import findings
from opencontrail_net.audit import repairs
from opencontrail_net import exception
from opencontrail_net import jitter
from opencontrail_net import metrics

LOG = logging.getLogger(__name__)

# One audit in this many (and the first) lists the audited projects: at
# the default interval, one an hour.
FULL_EVERY = 12


class PeriodicAudit:
    """The audit every ``audit_interval`` seconds, in a thread.

    A finding is repaired when two audits in a row saw it and no call in
    flight holds its IDs; each repair is logged at WARNING.
    """

    # Audits done, and the networks the last one saw.
    _rounds = 0
    _known: frozenset = frozenset()

    def __init__(self, conf, backend, ports, claims):
        self.conf = conf
        self.backend = backend
        self.ports = ports
        self.claims = claims
        self.view = compare.docker_view(conf)
        self._previous = None
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        """Start the audits unless they are off or already running (also
        after a reload that changed ``audit_interval``)."""
        if self._thread is not None and self._thread.is_alive():
            return
        interval = self.conf.audit_interval
        if not interval:
            LOG.info('Periodic audit off (audit_interval = 0)')
            return
        if not self.conf.docker_url:
            LOG.warning('Periodic audit off: docker_url is not set')
            return
        self._thread = threading.Thread(target=self._loop, name='ocn-audit',
                                        daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()

    def _loop(self):
        # The interval is read anew each round: a reload may change it, or
        # turn the audit off (0).
        wait = jitter.first(self.conf.audit_interval or 0)
        while self.conf.audit_interval and not self._stop.wait(wait):
            if not self.conf.audit_interval:
                break
            try:
                self.run_once()
            except Exception:
                LOG.exception('Audit failed')
            wait = jitter.between(self.conf.audit_interval or 0)
        LOG.info('Periodic audit stopped')

    def run_once(self):
        full = self._rounds % FULL_EVERY == 0
        try:
            report = compare.collect(self.conf, self.backend, self.ports,
                                     self.view,
                                     None if full else self._known)
        except exception.DockerUnavailable as exc:
            # Never guess what Docker has: skip, and start over.
            LOG.info('Audit skipped: %s', exc)
            self._previous = None
            metrics.AUDIT_RUNS.labels('skipped').inc()
            return None
        except exception.OpenContrailNetError as exc:
            LOG.warning('Audit skipped: %s', exc)
            self._previous = None
            metrics.AUDIT_RUNS.labels('skipped').inc()
            return None
        self._rounds += 1
        self._known = frozenset(row['id'] for row in report.networks)
        _count_findings(report)
        confirmed = self._previous or set()
        # What was repaired or left is checked afresh by the next audit.
        self._previous = {f.key for f in report.findings}
        try:
            done = repairs.repair(report, self.backend, self.ports,
                                  self.view, self.claims, confirmed)
        except exception.AuditUnsure as exc:
            LOG.warning('Audit: %s', exc)
            self._previous = None
            metrics.AUDIT_RUNS.labels('unsure').inc()
            done = getattr(exc, 'done', [])
        else:
            metrics.AUDIT_RUNS.labels('done').inc()
        for finding, action in done:
            metrics.AUDIT_REPAIRS.labels(finding.kind, _outcome(action)).inc()
            if action.startswith('left: seen once'):
                LOG.info('Audit: %s; repaired if still so on the next '
                         'audit', finding)
            elif action.startswith('left:'):
                LOG.warning('Audit: %s; %s', finding, action[6:])
            elif action.startswith('failed'):
                LOG.error('Audit: %s; repair %s', finding, action)
            else:
                LOG.warning('Audit repaired %s: %s', finding, action)
        return report


def _count_findings(report):
    """The latest audit's findings by kind, every kind shown (0 too)."""
    counts = dict.fromkeys(findings.WHY, 0)
    for finding in report.findings:
        counts[finding.kind] = counts.get(finding.kind, 0) + 1
    for kind, count in counts.items():
        metrics.AUDIT_FINDINGS.labels(kind).set(count)


def _outcome(action):
    if action.startswith('left:'):
        return 'left'
    if action.startswith('failed'):
        return 'failed'
    return 'repaired'
