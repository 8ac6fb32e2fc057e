"""The coverage summary that ends tests/run-all.sh.

Reads the report `coverage json` wrote ([coverage:json] output in
setup.cfg) and prints a few lines: the total of opencontrail_net/ and its
floor ([coverage:report] fail_under, which `coverage json` itself holds
the total to), then each product module under 80% of its lines, with the
reason tests/coverage_reasons.txt gives for it. Exits 1 if a module is
under 80% with no reason there, or if a reason names no product module.
With --partial (a run of some of the tests) it prints the total only.
"""

import json
import os
import sys

import coverage

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REASONS = os.path.join('tests', 'coverage_reasons.txt')
MODULE_FLOOR = 80


def read_reasons(path):
    """{module path: reason} from lines of "path reason"; '#' comments."""
    reasons = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith('#'):
                module, _, reason = line.partition(' ')
                reasons[module] = reason.strip()
    return reasons


def summarize(report, floor, reasons, partial=False):
    """The lines to print, and whether the modules pass."""
    total = report['totals']['percent_covered_display']
    lines = ['coverage: %s%% of opencontrail_net/ (floor %g%%)' % (
        total, floor)]
    if partial:
        lines[0] += ', some tests only: not held to it'
        return lines, True
    files = report['files']
    ok = True
    for module in sorted(files):
        summary = files[module]['summary']
        if summary['percent_covered'] >= MODULE_FLOOR:
            continue
        reason = reasons.get(module)
        if reason is None:
            ok = False
            reason = 'NO REASON in %s' % REASONS
        lines.append('  %s %.1f%%: %s' % (
            module, summary['percent_covered'], reason))
    for module in sorted(set(reasons) - set(files)):
        ok = False
        lines.append('  %s: in %s, not a product module' % (module, REASONS))
    return lines, ok


def main(argv):
    os.chdir(ROOT)
    config = coverage.Coverage()
    with open(config.get_option('json:output')) as f:
        report = json.load(f)
    lines, ok = summarize(report, config.get_option('report:fail_under'),
                          read_reasons(REASONS),
                          partial='--partial' in argv)
    print('\n'.join(lines))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
