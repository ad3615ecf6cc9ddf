"""`codecbench dataset download|verify` against a loopback HTTP server started here (no internet): a full download,
one interrupted mid-archive and resumed (every byte served once), a corrupt archive (fetched again once, then a
named error), a server that stops answering, and too little disk (refused before any request).

The archives are small fakes in the layout of the real TAU 2020 Mobile record: the same file names, a manifest
with their sizes and MD5s, and inside them the dataset folder with its split files and audio.
"""
import hashlib
import io
import json
import threading
import time
import zipfile
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import soundfile as sf

from codecbench.cli import main
from codecbench.datasets import download, load_dataset

ROOT = "TAU-urban-acoustic-scenes-2020-mobile-development"


def _wav(seed: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.random.default_rng(seed).uniform(-0.1, 0.1, 44100).astype(np.float32), 44100, format="WAV",
             subtype="PCM_16")
    return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buffer.getvalue()


def _archives() -> dict[str, bytes]:
    clips = {f"audio/{scene}-london-{i}-a.wav": _wav(i) for i, scene in enumerate(["airport", "bus", "park", "tram"])}
    rows = "\n".join(f"{name}\t{name.split('/')[1].split('-')[0]}" for name in clips)
    split = {f"{ROOT}/evaluation_setup/fold1_{s}.csv": f"filename\tscene_label\n{rows}\n".encode()
             for s in ("train", "evaluate")}
    names = list(clips)
    return {f"{ROOT}.meta.zip": _zip({**split, f"{ROOT}/meta.csv": b"filename\tscene_label\n"}),
            f"{ROOT}.audio.1.zip": _zip({f"{ROOT}/{n}": clips[n] for n in names[:2]}),
            f"{ROOT}.audio.2.zip": _zip({f"{ROOT}/{n}": clips[n] for n in names[2:]})}


class Server:
    """Serves ``files`` with HTTP range support; counts the bytes sent per file; can misbehave per file."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.sent, self.ranges = files, defaultdict(int), []
        self.cut_once, self.corrupt, self.hang = set(), defaultdict(int), set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.lstrip("/")
                if name in server.hang:
                    time.sleep(3)
                    return
                if name not in server.files:
                    self.send_error(404)
                    return
                data = server.files[name]
                if server.corrupt[name] > 0:
                    server.corrupt[name] -= 1
                    data = bytes(b ^ 0xFF for b in data)
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    server.ranges.append((name, start))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if name in server.cut_once:  # the connection drops half-way through the archive
                    server.cut_once.discard(name)
                    body = body[:len(body) // 2]
                    self.wfile.write(body)
                    server.sent[name] += len(body)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)
                server.sent[name] += len(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def server(tmp_path, monkeypatch):
    files = _archives()
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "tau2020-mobile.json").write_text(json.dumps({
        "name": "tau2020-mobile", "title": "TAU 2020 Mobile (test copy)", "licence": "test", "source": "test",
        "url": "http://127.0.0.1:9/unused/", "root": ROOT,
        "files": [{"name": n, "size": len(d), "md5": hashlib.md5(d).hexdigest()} for n, d in files.items()]}))
    monkeypatch.setenv("CODECBENCH_DATASET_MANIFESTS", str(manifests))
    served = Server(files)
    yield served
    served.close()


def test_download_verify_and_load(server, tmp_path, capsys):
    target = tmp_path / "data"
    assert main(["dataset", "download", "tau2020-mobile", "--mirror", server.url, "--to", str(target)]) == 0
    assert main(["dataset", "verify", "tau2020-mobile", str(target)]) == 0
    assert "complete" in capsys.readouterr().out
    dataset = load_dataset(target / ROOT)
    assert len(dataset.clips("evaluate")) == 4 and dataset.class_names == ["airport", "bus", "park", "tram"]
    assert dict(server.sent) == {n: len(d) for n, d in server.files.items()}
    # again: everything is there, nothing is fetched
    assert main(["dataset", "download", "tau2020-mobile", "--mirror", server.url, "--to", str(target)]) == 0
    assert dict(server.sent) == {n: len(d) for n, d in server.files.items()}
    (target / ROOT / "audio" / "park-london-2-a.wav").unlink()
    assert main(["dataset", "verify", "tau2020-mobile", str(target)]) == 1
    assert "park-london-2-a.wav" in capsys.readouterr().out


def test_an_interrupted_archive_resumes_where_it_stopped(server, tmp_path):
    name = f"{ROOT}.audio.1.zip"
    server.cut_once.add(name)
    with pytest.raises(download.DownloadError, match=r"\.part"):  # no retry: the command stops, the part is kept
        download.download("tau2020-mobile", tmp_path / "d", mirror=server.url, retries=0, log=lambda m: None)
    assert 0 < (tmp_path / "d" / "archives" / f"{name}.part").stat().st_size < len(server.files[name])
    download.download("tau2020-mobile", tmp_path / "d", mirror=server.url, log=lambda m: None)
    assert server.sent[name] == len(server.files[name])  # every byte fetched once
    assert [n for n, start in server.ranges if start > 0] == [name]
    assert download.verify("tau2020-mobile", tmp_path / "d") == []


def test_a_corrupt_archive_is_fetched_again_once_then_named(server, tmp_path):
    name = f"{ROOT}.audio.2.zip"
    server.corrupt[name] = 1
    lines = []
    download.download("tau2020-mobile", tmp_path / "ok", mirror=server.url, log=lines.append)
    assert any("fetching it once more" in line for line in lines)
    server.corrupt[name] = 2
    with pytest.raises(download.DownloadError, match=rf"{name}: fetched twice and still not the publisher's file"):
        download.download("tau2020-mobile", tmp_path / "bad", mirror=server.url, log=lambda m: None)
    assert not (tmp_path / "bad" / "archives" / name).exists()
    assert not (tmp_path / "bad" / "archives" / f"{name}.part").exists()


def test_a_server_that_stops_answering_is_a_named_error(server, tmp_path):
    server.hang.add(f"{ROOT}.meta.zip")
    with pytest.raises(download.DownloadError, match=r"meta\.zip: no answer after 2 attempts"):
        download.download("tau2020-mobile", tmp_path / "d", mirror=server.url, timeout=0.5, retries=1,
                          log=lambda m: None)


def test_too_little_disk_is_refused_before_any_request(server, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(download.DownloadError, match="GB are needed .* nothing was downloaded"):
        download.download("tau2020-mobile", tmp_path / "d", mirror=server.url, log=lambda m: None)
    assert not server.sent


def test_the_packaged_record_is_the_publishers():
    rec = download.record("tau2020-mobile") if "CODECBENCH_DATASET_MANIFESTS" not in __import__("os").environ \
        else None
    if rec is None:
        pytest.skip("another manifest folder overrides the packaged record")
    assert len(rec.files) == 18 and rec.url.startswith("https://zenodo.org/records/3819968/")
    assert round(rec.size / 1e9, 1) == 27.4
    assert {f["name"] for f in rec.files} >= {f"{ROOT}.audio.{i}.zip" for i in range(1, 17)}
    assert all(len(f["md5"]) == 32 for f in rec.files)
