"""The one atomic-write and output-check mechanism every writer uses."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from esrgan_lab.errors import ConfigError
from esrgan_lab.fileio import atomic_path, atomic_write_text, check_output


def test_atomic_path_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.txt"
    atomic_write_text(target, "first\n")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("writer failed")
    assert target.read_text() == "first\n"  # untouched
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]  # no temp left
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask  # not mkstemp's 0600


def test_atomic_path_can_refuse_missing_folders(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        with atomic_path(tmp_path / "missing" / "x.bin", make_parents=False):
            pass


def test_check_output_refuses_inputs_and_existing_files(tmp_path: Path) -> None:
    source = tmp_path / "in.pth"
    source.write_bytes(b"x")
    link = tmp_path / "link.pth"
    link.symlink_to(source)
    for spelling in (source, tmp_path / "." / "in.pth", link):
        with pytest.raises(ConfigError, match="output is the input file"):
            check_output(spelling, [source])
    with pytest.raises(ConfigError, match="use --force"):
        check_output(source, [], force=False)
    assert check_output(source, [], force=True) == source
    assert check_output(tmp_path / "new.pth", [source], force=False) == tmp_path / "new.pth"


def test_replace_section_keeps_markers_and_reports_staleness(tmp_path) -> None:
    from esrgan_lab.errors import ConfigError
    from esrgan_lab.fileio import replace_section

    path = tmp_path / "README.md"
    path.write_text("intro\n<!-- s:begin -->\nold\n<!-- s:end -->\noutro\n")
    assert replace_section(path, "<!-- s:begin -->", "<!-- s:end -->", "new", check=True)
    assert "old" in path.read_text()  # check writes nothing
    assert replace_section(path, "<!-- s:begin -->", "<!-- s:end -->", "new")
    assert path.read_text() == "intro\n<!-- s:begin -->\nnew\n<!-- s:end -->\noutro\n"
    assert not replace_section(path, "<!-- s:begin -->", "<!-- s:end -->", "new")
    with pytest.raises(ConfigError, match="no <!-- t:begin -->"):
        replace_section(path, "<!-- t:begin -->", "<!-- t:end -->", "x")
