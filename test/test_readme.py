"""The README stays true: every command and flag it should show, and only commands, targets and files that exist."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from cooperative_fusion import cli

REPO = Path(__file__).resolve().parents[1]
README = (REPO / 'README.md').read_text()


def _subparsers() -> dict[str, object]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if a.dest == 'command')
    return dict(action.choices)


def _code() -> str:
    """The README's code: fenced blocks and inline code spans."""
    blocks = re.findall(r'```.*?\n(.*?)```', README, flags=re.S)
    spans = re.findall(r'`([^`\n]+)`', re.sub(r'```.*?```', '', README, flags=re.S))
    return '\n'.join(blocks + spans)


@pytest.mark.parametrize('command', sorted(_subparsers()))
def test_every_subcommand_and_flag_is_in_the_readme(command):
    sub = _subparsers()[command]
    assert f'cooperative-fusion {command}' in README
    flags = sorted({s for a in sub._actions for s in a.option_strings if s.startswith('--') and s != '--help'})
    missing = [f for f in flags if not re.search(rf'{re.escape(f)}(?![\w-])', README)]
    assert missing == [], f'{command}: flags missing from the README: {missing}'


def test_every_command_the_readme_shows_exists():
    shown = set(re.findall(r'cooperative-fusion ([a-z][a-z-]*)', _code()))
    assert shown, 'the README shows no cooperative-fusion command'
    assert shown - set(_subparsers()) == set()


def test_every_make_target_and_console_script_it_shows_exists():
    makefile = (REPO / 'Makefile').read_text()
    targets = set(re.findall(r'^([a-z][\w-]*):', makefile, flags=re.M))
    shown = set(re.findall(r'(?<![\w-])make ([a-z][\w-]*)', _code()))
    assert shown and shown <= targets, shown - targets
    setup = (REPO / 'setup.py').read_text()
    scripts = set(re.findall(r"'([a-z_]+) = cooperative_fusion", setup))
    used = {s for s in ('vehicle_node', 'fusion_node', 'twin_node', 'fault_injector', 'advisory_follower')
            if re.search(rf'^\s*{s} ', _code(), flags=re.M)}
    assert used <= scripts, used - scripts


def test_apt_packages_are_the_makefiles():
    makefile = (REPO / 'Makefile').read_text()
    apt = re.search(r'^APT_PACKAGES\s*:=\s*(.+)$', makefile, flags=re.M).group(1).split()
    section = README.split('## Quick start', 1)[1].split('\n## ', 1)[0]
    listed = set(re.findall(r'`([a-z0-9][a-z0-9.+-]*)`', section)) & set(apt)
    assert listed == set(apt), set(apt) - listed


def test_links_point_to_files_that_exist():
    links = re.findall(r'\]\(((?!https?:|#)[^)\s]+)\)', README)
    assert links
    assert [link for link in links if not (REPO / link.split('#')[0]).exists()] == []


def test_size_and_contents():
    assert len(README.encode()) < 25_000
    assert '**Contents:**' in README
    assert not re.search(r'\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b', README), 'commit hashes'
    assert 'DESIGN.md' not in README and not re.search(r'\bissue \d', README, flags=re.I)
