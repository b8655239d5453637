"""The dataset catalog and its checked, resumable download + extraction (local server only)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from esrgan_lab.data.catalog import (
    CATALOG,
    PARTS,
    Archive,
    Dataset,
    download_dataset,
    extract_archive,
    get_dataset,
)
from esrgan_lab.download import DIGEST_LENGTHS, parse_digest
from esrgan_lab.errors import ConfigError, DataError, DownloadError
from tests.local_http import (
    PROXY_VARS,
    FileServer,
    closed_port,
    fake_dataset,
    make_tar,
    make_zip,
)

ZIP = make_zip({f"Tiny_HR/{i:04d}.png": bytes([i]) * 3000 for i in range(1, 4)})
LQ_ZIP = make_zip({f"Tiny_LR_bicubic/X4/{i:04d}x4.png": bytes([i]) * 200 for i in range(1, 4)})
TAR = make_tar(
    {
        "bench/SetA/HR/a.png": b"a" * 5000,
        "bench/SetA/LR_bicubic/X4/ax4.png": b"a" * 300,
        "bench/SetB/HR/b.png": b"b" * 5000,
    }
)


def md5(data: bytes) -> str:
    return "md5:" + hashlib.md5(data).hexdigest()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def server(monkeypatch) -> Iterator[FileServer]:
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    srv = FileServer({"/tiny.zip": ZIP, "/tiny_lq.zip": LQ_ZIP, "/bench.tar": TAR})
    yield srv
    srv.close()


def _tiny(url: str, digest: str | None = None) -> Dataset:
    hr = Archive(f"{url}/tiny.zip", "tiny.zip", "Tiny_HR", len(ZIP), digest or md5(ZIP))
    lq = Archive(
        f"{url}/tiny_lq.zip", "tiny_lq.zip", "Tiny_LR_bicubic/X4", digest=md5(LQ_ZIP), part="lq"
    )
    return fake_dataset("tiny", (hr, lq), hr_folder="Tiny_HR")


@pytest.fixture
def catalog(server, monkeypatch) -> FileServer:
    """Test entries ``tiny`` (zip, optional LQ zip) and ``seta``/``setb`` (one tar)."""
    bench = Archive(f"{server.url}/bench.tar", "bench.tar", "bench", len(TAR), sha256(TAR))
    monkeypatch.setitem(CATALOG, "tiny", _tiny(server.url))
    for name, folder in (("seta", "bench/SetA/HR"), ("setb", "bench/SetB/HR")):
        entry = fake_dataset(name, (bench,), hr_folder=folder, role="test")
        monkeypatch.setitem(CATALOG, name, entry)
    return server


def _tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_download_checks_and_unpacks(catalog, tmp_path) -> None:
    root = tmp_path / "data"
    assert download_dataset("tiny", root, progress=False) == root / "Tiny_HR"
    assert _tree(root) == [
        "Tiny_HR/0001.png",
        "Tiny_HR/0002.png",
        "Tiny_HR/0003.png",
        "downloads/tiny.zip",
    ]
    assert (root / "Tiny_HR/0002.png").read_bytes() == bytes([2]) * 3000
    assert CATALOG["tiny"].is_present(root)
    # Done work is skipped; the LQ part is added on request only.
    assert download_dataset("Tiny", root, progress=False) == root / "Tiny_HR"
    assert [p for p, _ in catalog.requests] == ["/tiny.zip"]
    download_dataset("tiny", root, parts=("hr", "lq"), progress=False)
    assert [p for p, _ in catalog.requests] == ["/tiny.zip", "/tiny_lq.zip"]
    assert (root / "Tiny_LR_bicubic/X4/0003x4.png").is_file()


def test_tar_shared_by_two_names(catalog, tmp_path) -> None:
    assert download_dataset("seta", tmp_path, progress=False) == tmp_path / "bench/SetA/HR"
    assert download_dataset("setb", tmp_path, progress=False) == tmp_path / "bench/SetB/HR"
    assert catalog.requests == [("/bench.tar", None)]  # one archive for both
    assert (tmp_path / "bench/SetA/LR_bicubic/X4/ax4.png").read_bytes() == b"a" * 300
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_download_resumes(catalog, tmp_path) -> None:
    catalog.cut["/tiny.zip"] = 1000
    with pytest.raises(DownloadError, match="run again to resume"):
        download_dataset("tiny", tmp_path, progress=False)
    assert _tree(tmp_path) == ["downloads/tiny.zip.part"]
    download_dataset("tiny", tmp_path, progress=False)
    assert catalog.requests == [("/tiny.zip", None), ("/tiny.zip", "bytes=1000-")]
    assert len(_tree(tmp_path / "Tiny_HR")) == 3


def test_checksum_mismatch_leaves_nothing(catalog, monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(CATALOG, "tiny", _tiny(catalog.url, digest="md5:" + "0" * 32))
    with pytest.raises(DownloadError) as info:
        download_dataset("tiny", tmp_path, progress=False)
    message = str(info.value)
    assert f"md5 mismatch, expected {'0' * 32}, got {md5(ZIP)[4:]}" in message
    assert "\n" not in message
    assert _tree(tmp_path) == [] and not (tmp_path / "Tiny_HR").exists()


def test_offline_is_one_line(catalog, monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(CATALOG, "tiny", _tiny(f"http://127.0.0.1:{closed_port()}"))
    with pytest.raises(DownloadError, match="cannot reach .*check the network") as info:
        download_dataset("tiny", tmp_path, progress=False)
    assert "\n" not in str(info.value) and _tree(tmp_path) == []


def test_missing_hr_folder_is_an_error(catalog, monkeypatch, tmp_path) -> None:
    entry = CATALOG["seta"]
    monkeypatch.setitem(CATALOG, "seta", Dataset(**{**entry.__dict__, "hr_folder": "bench/X"}))
    with pytest.raises(DataError, match="no folder bench/X"):
        download_dataset("seta", tmp_path, progress=False)


def test_interrupted_unpack_is_redone(catalog, tmp_path) -> None:
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads/tiny.zip").write_bytes(ZIP)  # downloaded and checked before
    leftover = tmp_path / ".unpack-tiny.zip" / "Tiny_HR"
    leftover.mkdir(parents=True)
    (leftover / "0001.png").write_bytes(b"half")
    download_dataset("tiny", tmp_path, progress=False)
    assert catalog.requests == []  # the archive was there: no download
    assert not (tmp_path / ".unpack-tiny.zip").exists()
    assert (tmp_path / "Tiny_HR/0001.png").read_bytes() == bytes([1]) * 3000


def test_force_downloads_and_unpacks_again(catalog, tmp_path) -> None:
    download_dataset("tiny", tmp_path, progress=False)
    (tmp_path / "Tiny_HR/extra.png").write_bytes(b"stale")
    download_dataset("tiny", tmp_path, force=True, progress=False)
    assert len(catalog.requests) == 2
    assert _tree(tmp_path / "Tiny_HR") == ["0001.png", "0002.png", "0003.png"]


def test_manual_dataset_says_what_to_do(tmp_path) -> None:
    with pytest.raises(DataError) as info:
        download_dataset("ost", tmp_path)
    message = str(info.value)
    assert "no direct download" in message and "mmlab.ie.cuhk.edu.hk" in message
    assert "$ESRGAN_LAB_DATA/OST" in message and "\n" not in message
    (tmp_path / "OST" / "sky").mkdir(parents=True)
    assert download_dataset("ost", tmp_path) == tmp_path / "OST"  # placed by hand
    with pytest.raises(DataError, match="manga109.org"):
        download_dataset("manga109", tmp_path)


def test_root_defaults_to_esrgan_lab_data(catalog, monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("ESRGAN_LAB_DATA", raising=False)
    with pytest.raises(DataError, match="ESRGAN_LAB_DATA.*--root"):
        download_dataset("tiny", progress=False)
    monkeypatch.setenv("ESRGAN_LAB_DATA", str(tmp_path))
    assert download_dataset("tiny", progress=False) == tmp_path / "Tiny_HR"


def test_unknown_name_and_part() -> None:
    with pytest.raises(ConfigError, match="unknown dataset 'div3k'.*div2k"):
        get_dataset("div3k")
    with pytest.raises(ConfigError, match="unknown dataset part"):
        download_dataset("set5", "/nonexistent", parts=("hr", "x8"))


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (make_zip({"../evil.txt": b"x", "ok/a.png": b"a"}), "unsafe member '../evil.txt'"),
        (make_tar({"/abs/evil.txt": b"x"}), "unsafe member '/abs/evil.txt'"),
        (make_tar({"ok/a.png": b"a"}, links={"ok/link": "../../etc/passwd"}), "unsafe member"),
        (b"neither zip nor tar" * 100, "neither a zip nor a tar"),
        (make_zip({"other/a.png": b"a"}), "holds no folder 'ok'"),
        (make_zip({"ok/a.png": b"a" * 100})[:-30], "corrupt"),
    ],
)
def test_unsafe_or_wrong_archives_are_refused(tmp_path, archive, message) -> None:
    file = tmp_path / "downloads" / ("x.zip" if message == "corrupt" else "x.bin")
    file.parent.mkdir()
    file.write_bytes(archive)
    root = tmp_path / "root"
    with pytest.raises(DataError, match=message):
        extract_archive(file, root, "ok")
    assert list(root.iterdir()) == [] and not (tmp_path / "evil.txt").exists()


def test_catalog_is_well_formed() -> None:
    expected = {
        "div2k",
        "flickr2k",
        "ost",
        "benchmark",
        "set5",
        "set14",
        "bsd100",
        "urban100",
        "manga109",
    }
    assert set(CATALOG) == expected
    for name, d in CATALOG.items():
        assert d.name == name == name.lower() and d.role in ("train", "test")
        assert d.description and d.citation and d.homepage.startswith(("http://", "https://"))
        assert d.manual == (not d.archives) == bool(d.instructions), name
        for a in d.archives:
            assert a.url.startswith(("http://", "https://")) and a.url.endswith("/" + a.filename)
            assert a.part in PARTS and a.folder and not a.folder.startswith("/")
            assert d.hr_folder == a.folder or any(
                x.part == "lq" or d.hr_folder.startswith(x.folder + "/") for x in d.archives
            )
            if a.digest is not None:
                algorithm, hexdigest = parse_digest(a.digest)
                assert len(hexdigest) == DIGEST_LENGTHS[algorithm]
            assert a.size is None or a.size > 0
    assert len({d.title.lower() for d in CATALOG.values()}) == len(CATALOG)
    # The four benchmark sets are folders of one archive.
    bench = CATALOG["benchmark"].archives
    folders = {n: CATALOG[n].hr_folder for n in ("set5", "set14", "bsd100", "urban100")}
    assert folders == {
        "set5": "benchmark/Set5/HR",
        "set14": "benchmark/Set14/HR",
        "bsd100": "benchmark/B100/HR",
        "urban100": "benchmark/Urban100/HR",
    }
    assert all(CATALOG[n].archives == bench for n in folders)
    assert bench[0].size == 250112000 and CATALOG["set5"].size() == 250112000
    div2k = CATALOG["div2k"]
    assert [a.folder for a in div2k.archives_for()] == ["DIV2K_train_HR", "DIV2K_valid_HR"]
    assert len(div2k.archives_for(("hr", "lq"))) == 4 and div2k.size() is None
    assert get_dataset("Set5") is CATALOG["set5"]


def test_benchmark_sets_are_found_by_name_where_the_download_puts_them(tmp_path, monkeypatch):
    """``--dataset BSD100`` finds the downloaded archive's B100/HR; a set in
    ``$ESRGAN_LAB_DATA/<title>`` (as the shared data keeps Set5) counts as present."""
    from esrgan_lab.settings import dataset_dir

    monkeypatch.setenv("ESRGAN_LAB_DATA", str(tmp_path))
    assert dataset_dir("BSD100") is None and not get_dataset("bsd100").is_present(tmp_path)
    hr = tmp_path / "benchmark" / "B100" / "HR"
    hr.mkdir(parents=True)
    (hr / "3096.png").write_bytes(b"")
    assert dataset_dir("BSD100") == hr
    own = tmp_path / "Set5"
    own.mkdir()
    (own / "baby.png").write_bytes(b"")
    assert dataset_dir("Set5") == own and get_dataset("set5").is_present(tmp_path)
    assert not get_dataset("div2k").is_present(tmp_path)


def test_require_dataset_names_what_to_set(tmp_path, monkeypatch):
    from esrgan_lab.errors import DataError
    from esrgan_lab.settings import require_dataset

    monkeypatch.delenv("ESRGAN_LAB_DATA", raising=False)
    with pytest.raises(DataError, match="Set14 not found: ESRGAN_LAB_DATA is unset"):
        require_dataset("Set14")
    monkeypatch.setenv("ESRGAN_LAB_DATA", str(tmp_path))
    with pytest.raises(DataError, match=r"point it at the folder that holds Set14/"):
        require_dataset("Set14")
    (tmp_path / "Set14").mkdir()
    assert require_dataset("Set14") == tmp_path / "Set14"
