"""``esrgan-lab datasets list|info|download`` through ``esrgan_lab.cli.main`` (local server)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from esrgan_lab.cli import main
from esrgan_lab.data.catalog import CATALOG, Archive, Dataset
from tests.local_http import PROXY_VARS, FileServer, closed_port, fake_dataset, make_zip

ZIP = make_zip({f"Tiny_HR/{i:04d}.png": bytes([i]) * 2000 for i in range(1, 3)})


def _tiny(url: str, digest: str) -> Dataset:
    archive = Archive(f"{url}/tiny.zip", "tiny.zip", "Tiny_HR", len(ZIP), digest)
    return fake_dataset("tiny", (archive,), hr_folder="Tiny_HR")


@pytest.fixture
def server(monkeypatch) -> Iterator[FileServer]:
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    srv = FileServer({"/tiny.zip": ZIP})
    monkeypatch.setitem(CATALOG, "tiny", _tiny(srv.url, "md5:" + hashlib.md5(ZIP).hexdigest()))
    yield srv
    srv.close()


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setenv("ESRGAN_LAB_DATA", str(folder))
    return folder


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("esrgan-lab datasets: error: ")
    return err


def _rows(out: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}


def test_list_shows_present_and_absent(root, capsys) -> None:
    (root / "benchmark/Set5/HR").mkdir(parents=True)
    (root / "benchmark/Set5/HR/baby.png").write_bytes(b"png")
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert rows["set5"][1:6] == ["test", "250.1", "MB", "download", "present"]
    assert rows["set14"][5] == "absent"
    assert rows["div2k"][1:5] == ["train", "?", "download", "absent"]
    assert rows["ost"][1:5] == ["train", "-", "manual", "absent"]
    assert f"data folder: {root}" in out
    # Another folder through --root.
    assert main(["datasets", "list", "--root", str(root / "elsewhere")]) == 0
    assert _rows(capsys.readouterr().out)["set5"][5] == "absent"


def test_list_without_data_folder(monkeypatch, capsys) -> None:
    monkeypatch.delenv("ESRGAN_LAB_DATA", raising=False)
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    assert "data folder: not set" in out and _rows(out)["div2k"][4] == "absent"


def test_download_then_list(server, root, capsys) -> None:
    assert main(["datasets", "download", "tiny"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(root / "Tiny_HR")
    assert "unpacking tiny.zip" in captured.err
    assert sorted(p.name for p in (root / "Tiny_HR").iterdir()) == ["0001.png", "0002.png"]
    assert main(["datasets", "list"]) == 0
    size = f"{len(ZIP) / 1000:.1f}"
    assert _rows(capsys.readouterr().out)["tiny"][2:6] == [size, "kB", "download", "present"]
    other = root.parent / "other"
    assert main(["datasets", "download", "tiny", "--root", str(other), "--force"]) == 0
    assert (other / "Tiny_HR/0001.png").is_file() and len(server.requests) == 2


def test_download_errors_are_one_line(server, root, monkeypatch, capsys) -> None:
    monkeypatch.setitem(CATALOG, "tiny", _tiny(server.url, "md5:" + "0" * 32))
    assert main(["datasets", "download", "tiny"]) == 1  # with progress: error is the last line
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("downloading ") and err[-1].startswith("esrgan-lab datasets: error:")
    assert main(["datasets", "download", "tiny", "--no-progress"]) == 1
    assert "md5 mismatch, expected " + "0" * 32 in _error_line(capsys)
    assert not (root / "Tiny_HR").exists() and list((root / "downloads").iterdir()) == []
    offline = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setitem(CATALOG, "tiny", _tiny(offline, "md5:" + "0" * 32))
    assert main(["datasets", "download", "tiny", "--no-progress"]) == 1
    assert f"cannot reach {offline}/tiny.zip" in _error_line(capsys)
    assert main(["datasets", "download", "manga109"]) == 1
    assert "available on request only" in _error_line(capsys)
    assert main(["datasets", "download", "div3k"]) == 1
    assert "unknown dataset 'div3k'" in _error_line(capsys)
    monkeypatch.delenv("ESRGAN_LAB_DATA")
    assert main(["datasets", "download", "tiny", "--no-progress"]) == 1
    assert "--root" in _error_line(capsys)


def test_info(root, capsys) -> None:
    assert main(["datasets", "info", "div2k"]) == 0
    out = capsys.readouterr().out
    assert "http://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_train_HR.zip" in out
    assert "md5:bdc2d9338d4e574fe81bf7d158758658" in out and "Agustsson" in out
    assert "DIV2K_valid_LR_bicubic_X4.zip (with --with-lq)" in out
    assert f"HR images: {root / 'DIV2K_train_HR'} (absent)" in out
    assert "esrgan-lab datasets download div2k" in out
    assert (
        f"next: esrgan-lab prepare-data {root / 'DIV2K_train_HR'} {root / 'DF2K_OST_sub'} "
        "--crop 480 --step 240"
    ) in out
    assert main(["datasets", "info", "BSD100"]) == 0
    out = capsys.readouterr().out
    assert "250112000 bytes" in out and "sha256:80c21c33" in out
    assert f"--dataset {root / 'benchmark/B100/HR'}" in out
    assert main(["datasets", "info", "benchmark"]) == 0
    assert "holds the sets: set5, set14, bsd100, urban100" in capsys.readouterr().out
    assert main(["datasets", "info", "ost"]) == 0
    out = capsys.readouterr().out
    assert "manual download:" in out and "download ost" not in out
