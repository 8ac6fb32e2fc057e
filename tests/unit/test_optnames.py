"""The one table of option names, and the docs and parsers that read it."""

import dataclasses
import os
import re

from opencontrail_net import ipam
from opencontrail_net import model
from opencontrail_net import netopts
from opencontrail_net import optnames

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
README_TABLE = 'Network options (`-o KEY=VALUE`):'


def readme_options():
    """The names in the first column of the README's table of -o keys."""
    with open(os.path.join(ROOT, 'README.md')) as f:
        lines = f.read().split(README_TABLE, 1)[1].strip().splitlines()
    names = []
    for line in lines[2:]:     # past the header and its separator
        if not line.startswith('|'):
            break
        names += re.findall(r'`([^`]+)`', line.split('|')[1])
    return names


def test_readme_table_is_the_table():
    documented = readme_options()
    assert len(documented) == len(set(documented))
    assert set(documented) == set(optnames.accepted(optnames.OPT))


def test_every_name_and_field_once():
    names = [n for o in optnames.OPTIONS for n in o.names]
    assert len(names) == len(set(names))
    fields = [o.field for o in optnames.OPTIONS]
    assert len(fields) == len(set(fields))


def test_fields_are_record_fields():
    network = {f.name for f in dataclasses.fields(model.Network)}
    pool = {f.name for f in dataclasses.fields(model.Pool)}
    for option in optnames.OPTIONS:
        assert option.field in network
        assert (option.pool_field is not None) == (
            optnames.IPAM_OPT in option.where)
        assert option.pool_field is None or option.pool_field in pool
        assert option.help and '\n' not in option.help


def test_every_option_has_a_parser():
    for option in optnames.accepted(optnames.OPT).values():
        assert (option.field in netopts.PARSERS or
                option.field in netopts.TARGET_FIELDS)
    for option in optnames.accepted(optnames.IPAM_OPT).values():
        assert option.pool_field in ipam.POOL_PARSERS
    for option in optnames.accepted(optnames.LABEL).values():
        assert option.field in netopts.TARGET_FIELDS


def test_spelling_names_the_canonical_key():
    assert optnames.spelling('project') == '-o tenant='
    assert optnames.spelling('route_targets', optnames.LABEL) == '--label rt='


def test_differences_name_the_canonical_key():
    old = model.Network(id='a' * 64, project=['p'], mtu=1400).to_dict()
    new = dict(old, project=['q'], existing='x')
    assert model.option_differences(old, new) == [
        "tenant is ['p'], asked ['q']"]


CONTRAIL_TABLE = '| `[contrail]` option | meaning |'


def test_readme_contrail_table_is_the_options():
    """The README's [contrail] table names every option of the group,
    and nothing else."""
    from opencontrail_net.backends import contrail
    with open(os.path.join(ROOT, 'README.md')) as f:
        lines = f.read().split(CONTRAIL_TABLE, 1)[1].strip().splitlines()
    names = []
    for line in lines[1:]:     # past the separator
        if not line.startswith('|'):
            break
        names += re.findall(r'`([^`]+)`', line.split('|')[1])
    assert len(names) == len(set(names))
    assert set(names) == {o.name for o in contrail.CONFIG_OPTS}
