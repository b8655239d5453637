"""A local HTTP file server with ``Range`` support, and small archives to serve (no internet).

``http.server.SimpleHTTPRequestHandler`` ignores ``Range``; :class:`FileServer` answers it
(``206``/``416``) and can misbehave on purpose: cut a transfer short once, or ignore
``Range`` and send the whole file with ``200``.
"""

from __future__ import annotations

import io
import re
import socket
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from esrgan_lab.data.catalog import Archive, Dataset

#: Proxy variables a test removes so that urllib talks to 127.0.0.1 directly.
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


class FileServer:
    """Serve ``files`` (URL path -> bytes) on 127.0.0.1 from a thread.

    Attributes:
        url: ``http://127.0.0.1:<port>``.
        requests: ``(path, Range header or None)`` of every GET, in order.
        cut: Path -> byte count: the next GET of that path announces the full length,
            sends only that many bytes and closes the connection (once).
        ignore_range: Paths answered with ``200`` and the whole file despite ``Range``.
    """

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = dict(files)
        self.requests: list[tuple[str, str | None]] = []
        self.cut: dict[str, int] = {}
        self.ignore_range: set[str] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                server._answer(self)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def _answer(self, h: BaseHTTPRequestHandler) -> None:
        rng = h.headers.get("Range")
        self.requests.append((h.path, rng))
        body = self.files.get(h.path)
        if body is None:
            h.send_error(404, "Not Found")
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if match and h.path not in self.ignore_range:
            start = int(match.group(1))
            if start >= len(body):
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(body)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            h.send_response(200)
        h.send_header("Content-Length", str(len(body) - start))
        h.end_headers()
        data = body[start:]
        if h.path in self.cut:
            data = data[: self.cut.pop(h.path)]
            h.close_connection = True
        h.wfile.write(data)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def closed_port() -> int:
    """A local TCP port nobody listens on (connections to it are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_zip(members: dict[str, bytes]) -> bytes:
    """A zip archive of ``members`` (name -> content)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def make_tar(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    """An uncompressed tar archive of ``members`` plus symbolic ``links`` (name -> target)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    return buffer.getvalue()


def fake_dataset(
    name: str, archives: tuple[Archive, ...], *, hr_folder: str, role: str = "train"
) -> Dataset:
    """A catalog entry for the files a test serves (title = ``name`` capitalised)."""
    return Dataset(
        name=name,
        title=name.capitalize(),
        description=f"test entry {name}",
        role=role,
        hr_folder=hr_folder,
        homepage="http://example.invalid/",
        citation="nobody",
        archives=archives,
    )
