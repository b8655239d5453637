"""The weights registry and the one downloader (esrgan_lab.download) against a local HTTP
server (no internet needed)."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from esrgan_lab.download import download, file_digest, parse_digest
from esrgan_lab.errors import ConfigError, DownloadError
from esrgan_lab.weights.checkpoints import load_checkpoint
from esrgan_lab.weights.loading import load_model
from esrgan_lab.weights.registry import (
    REGISTRY,
    WeightsEntry,
    fetch_weights,
)
from tests.helpers import make_tiny
from tests.local_http import FileServer, closed_port

_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def _payload() -> bytes:
    buffer = io.BytesIO()
    model = make_tiny()
    torch.save({"params_ema": model.state_dict()}, buffer)
    return buffer.getvalue()


class _Server:
    """A local HTTP server with one good file, a truncated one and 404s for the rest."""

    def __init__(self) -> None:
        self.payload = _payload()
        self.sha256 = hashlib.sha256(self.payload).hexdigest()
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                server.requests.append(self.path)
                body = server.payload
                if self.path == "/good.pth":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                elif self.path == "/truncated.pth":
                    # Announce the full size, send half, close the connection.
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.close_connection = True
                else:
                    self.send_error(404, "Not Found")

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server(monkeypatch) -> Iterator[_Server]:
    for var in _PROXY_VARS:  # talk to 127.0.0.1 directly, never through a proxy
        monkeypatch.delenv(var, raising=False)
    srv = _Server()
    yield srv
    srv.close()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("ESRGAN_LAB_WEIGHTS", str(folder))
    return folder


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_sha256_full_or_prefix() -> None:
    digest = hashlib.sha256(b"esrgan").hexdigest()
    assert parse_digest("sha256:" + digest) == ("sha256", digest)
    assert parse_digest("sha256:" + digest[:8].upper()) == ("sha256", digest[:8])
    with pytest.raises(ConfigError, match="bad checksum"):
        parse_digest("sha256:" + digest[:7])  # too short to mean anything


def test_good_download_full_and_prefix_hash(server, tmp_path) -> None:
    for expected in (server.sha256, server.sha256[:8]):
        dest = tmp_path / expected[:8] / "good.pth"
        url, digest = f"{server.url}/good.pth", f"sha256:{expected}"
        assert download(url, dest, digest=digest, progress=False) == dest
        assert dest.read_bytes() == server.payload
        assert file_digest(dest) == server.sha256
        assert _files(dest.parent) == ["good.pth"]  # no .part file left
    assert "conv_first.weight" in load_checkpoint(dest)


@pytest.mark.parametrize(
    ("path", "expected", "message"),
    [
        ("/good.pth", "0" * 64, "sha256 mismatch"),
        ("/good.pth", "deadbeef", "expected deadbeef"),
        ("/truncated.pth", None, "truncated download"),
        ("/missing.pth", None, "HTTP 404"),
    ],
)
def test_failed_downloads_leave_nothing(server, tmp_path, path, expected, message) -> None:
    dest = tmp_path / "cache" / "w.pth"
    with pytest.raises(DownloadError, match=message) as info:
        digest = f"sha256:{expected or server.sha256}"
        download(server.url + path, dest, digest=digest, progress=False)
    assert "\n" not in str(info.value) and server.url in str(info.value)
    assert _files(dest.parent) == []


def test_offline_is_a_clear_error(tmp_path) -> None:
    dest = tmp_path / "cache" / "w.pth"
    url = f"http://127.0.0.1:{_closed_port()}/good.pth"
    with pytest.raises(DownloadError, match=r"cannot reach .*check the network"):
        download(url, dest, digest="sha256:" + "0" * 64, progress=False)
    assert _files(dest.parent) == []


def test_unknown_hash_warns_with_digest(server, tmp_path) -> None:
    dest = tmp_path / "w.pth"
    with pytest.warns(UserWarning, match=server.sha256):
        download(f"{server.url}/good.pth", dest, progress=False)
    assert dest.read_bytes() == server.payload


def test_fetch_weights_caches_and_keeps_good_file_on_failure(server, cache, monkeypatch) -> None:
    entry = WeightsEntry(
        name="tiny-test",
        filename="tiny-test-0123abcd.pth",
        scale=4,
        layout="basicsr",
        description="test",
        license="test",
        url=f"{server.url}/good.pth",
        sha256=server.sha256,
    )
    monkeypatch.setitem(REGISTRY, entry.name, entry)
    path = fetch_weights("tiny-test", progress=False)
    assert path == cache / entry.filename and path.read_bytes() == server.payload
    assert fetch_weights("tiny-test", progress=False) == path
    assert server.requests == ["/good.pth"]  # the second call used the cache
    assert load_model("tiny-test").num_block == 1

    # A forced re-download that fails must not touch the good cached file.
    monkeypatch.setitem(
        REGISTRY, entry.name, WeightsEntry(**{**entry.__dict__, "sha256": "0" * 64})
    )
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        fetch_weights("tiny-test", force=True, progress=False)
    assert _files(cache) == [entry.filename] and path.read_bytes() == server.payload


def test_manual_entry_error_says_where_to_put_the_file(cache) -> None:
    with pytest.raises(DownloadError) as info:
        fetch_weights("esrgan-x4")
    message = str(info.value)
    assert str(cache / "RRDB_ESRGAN_x4.pth") in message
    assert "drive.google.com" in message and "\n" not in message
    # Once the file is in place, it is used as is.
    cache.mkdir()
    (cache / "RRDB_PSNR_x4.pth").write_bytes(b"placed by hand")
    assert fetch_weights("esrgan-psnr-x4") == cache / "RRDB_PSNR_x4.pth"


def test_unknown_name(cache) -> None:
    with pytest.raises(ConfigError, match="unknown weights name 'esrgan-x3'.*realesrgan-x4plus"):
        fetch_weights("esrgan-x3")


def test_registry_entries_are_well_formed() -> None:
    required = {
        "esrgan-x4",
        "esrgan-psnr-x4",
        "esrgan-x4-basicsr",
        "realesrgan-x4plus",
        "realesrnet-x4plus",
        "lab-psnr-x4",
        "lab-gan-x4",
    }
    assert required <= set(REGISTRY)
    for name, e in REGISTRY.items():
        assert (
            e.name == name and e.scale in (1, 2, 4, 8) and e.layout in ("basicsr", "esrgan", "old")
        )
        assert e.license and e.description
        if e.url:
            assert e.url.startswith("https://") and e.url.endswith(e.filename)
        if e.sha256:
            assert len(e.sha256) in (8, 64) and int(e.sha256, 16) >= 0
        # Exactly one source: a download, a manual download, this repository, or a package.
        sources = (e.url is not None) + (e.manual_url is not None) + e.local
        assert sources + (e.package is not None) == 1, name
        if e.package is not None:
            assert e.pip_name and ":" in e.package, name
    # BasicSR writes the first 8 hex digits of the SHA-256 into its file names.
    assert REGISTRY["esrgan-x4-basicsr"].filename.endswith(
        f"-{REGISTRY['esrgan-x4-basicsr'].sha256}.pth"
    )


# --- download(resume=True): Range requests, md5 / sha256 / size checks -------------------------

#: 200 kB, several read chunks, not a repeat of one chunk.
_BIG = bytes((i * 7 + i // 256) % 256 for i in range(200_000))
_MD5 = "md5:" + hashlib.md5(_BIG).hexdigest()
_SHA = "sha256:" + hashlib.sha256(_BIG).hexdigest()


@pytest.fixture
def files(monkeypatch) -> Iterator[FileServer]:
    for var in _PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    srv = FileServer({"/big.bin": _BIG})
    yield srv
    srv.close()


def test_parse_digest() -> None:
    assert parse_digest("MD5:" + "AB" * 16) == ("md5", "ab" * 16)
    assert parse_digest(_SHA) == ("sha256", _SHA[7:])
    for bad in ("ab" * 16, "md5:" + "ab" * 15, "sha1:" + "ab" * 20, "sha256:" + "zz" * 32):
        with pytest.raises(ConfigError, match="bad checksum"):
            parse_digest(bad)


def test_resume_after_truncated_transfer(files, tmp_path) -> None:
    dest = tmp_path / "dl" / "big.bin"
    files.cut["/big.bin"] = 70_000
    with pytest.raises(DownloadError, match="got 70000 of 200000 bytes.*run again to resume") as e:
        download(f"{files.url}/big.bin", dest, digest=_MD5, resume=True, progress=False)
    assert "\n" not in str(e.value)
    assert _files(dest.parent) == ["big.bin.part"]  # kept, never at dest
    assert (
        download(
            f"{files.url}/big.bin", dest, size=len(_BIG), digest=_MD5, resume=True, progress=False
        )
        == dest
    )
    assert dest.read_bytes() == _BIG and _files(dest.parent) == ["big.bin"]
    assert files.requests == [("/big.bin", None), ("/big.bin", "bytes=70000-")]
    assert file_digest(dest, "md5") == _MD5[4:]


def test_server_ignoring_range_starts_over(files, tmp_path) -> None:
    dest = tmp_path / "big.bin"
    (tmp_path / "big.bin.part").write_bytes(b"x" * 5000)  # not even a prefix of the file
    files.ignore_range.add("/big.bin")
    download(f"{files.url}/big.bin", dest, digest=_SHA, resume=True, progress=False)
    assert dest.read_bytes() == _BIG and _files(tmp_path) == ["big.bin"]
    assert files.requests == [("/big.bin", "bytes=5000-")]


def test_complete_part_file_is_finished(files, tmp_path) -> None:
    dest = tmp_path / "big.bin"
    (tmp_path / "big.bin.part").write_bytes(_BIG)
    # Size unknown: the Range request past the end gets 416, the part is whole.
    download(f"{files.url}/big.bin", dest, digest=_SHA, resume=True, progress=False)
    assert dest.read_bytes() == _BIG and files.requests == [("/big.bin", "bytes=200000-")]
    # Size known: no request at all.
    (tmp_path / "big.bin.part").write_bytes(_BIG)
    download(f"{files.url}/big.bin", dest, size=len(_BIG), digest=_MD5, resume=True, progress=False)
    assert len(files.requests) == 1 and _files(tmp_path) == ["big.bin"]


@pytest.mark.parametrize(
    ("size", "digest", "message"),
    [
        (None, "md5:" + "0" * 32, f"md5 mismatch, expected {'0' * 32}, got {_MD5[4:]}"),
        (None, "sha256:" + "0" * 64, f"sha256 mismatch, expected {'0' * 64}, got {_SHA[7:]}"),
        (len(_BIG) - 1, _MD5, f"size mismatch, expected {len(_BIG) - 1} bytes, got {len(_BIG)}"),
    ],
)
def test_resumable_mismatch_removes_the_file(files, tmp_path, size, digest, message) -> None:
    dest = tmp_path / "big.bin"
    (tmp_path / "big.bin.part").write_bytes(_BIG[:1000])  # a resumed transfer, too
    with pytest.raises(DownloadError) as info:
        url = f"{files.url}/big.bin"
        download(url, dest, size=size, digest=digest, resume=True, progress=False)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert _files(tmp_path) == []


def test_resumable_offline_and_404(files, tmp_path) -> None:
    dest = tmp_path / "dl" / "big.bin"
    url = f"http://127.0.0.1:{closed_port()}/big.bin"
    with pytest.raises(DownloadError, match=r"cannot reach .*check the network") as info:
        download(url, dest, digest=_MD5, resume=True, progress=False)
    assert "\n" not in str(info.value) and _files(dest.parent) == []
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{files.url}/nothing.bin", dest, digest=_MD5, resume=True, progress=False)
    assert _files(dest.parent) == []


def test_no_resume_leaves_nothing(files, tmp_path) -> None:
    dest = tmp_path / "big.bin"
    (tmp_path / "big.bin.part").write_bytes(b"stale")
    files.cut["/big.bin"] = 1000
    with pytest.raises(DownloadError, match="nothing was saved"):
        download(f"{files.url}/big.bin", dest, digest=_MD5, resume=False, progress=False)
    assert _files(tmp_path) == [] and files.requests == [("/big.bin", None)]


def test_resumable_without_checksum_warns_with_sha256(files, tmp_path) -> None:
    with pytest.warns(UserWarning, match=_SHA[7:]):
        download(f"{files.url}/big.bin", tmp_path / "b.bin", resume=True, progress=False)
    assert (tmp_path / "b.bin").read_bytes() == _BIG
