"""`codecbench dataset download|verify` against a loopback HTTP server started here (no internet): a full download,
one interrupted mid-archive and resumed (every byte served once), a corrupt archive (fetched again once, then a
named error), a server that stops answering, too little disk (refused before any request); UrbanSound8K (tar.gz)
and ESC-50 (a zip without a published size or checksum) downloaded, verified and loaded by folds; and the hostile
cases of a download (a server announcing or sending too much, one that trickles, a redirect loop, a ``file://``
mirror, a wrong archive already in the folder, a record that points outside it, an archive with a link member,
two downloads into one folder) and of a dataset folder (a truncated clip, a clip of the wrong length, a link to a
device).

The archives are small fakes in the layout of the real records: the same file names, a manifest with their sizes
and MD5s, and inside them the dataset folder with its listing and audio.
"""
import hashlib
import io
import json
import os
import re
import tarfile
import threading
import time
import zipfile
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import soundfile as sf

from codecbench.cli import main
from codecbench.datasets import download, load_dataset, parse_folds
from codecbench.datasets.verify import verify

from . import optional

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
        self.announce, self.trickle, self.loop, self.slow_headers = {}, set(), set(), set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.lstrip("/")
                if name in server.loop:  # a redirect to itself
                    self.send_response(302)
                    self.send_header("Location", self.path)
                    self.end_headers()
                    return
                if name in server.hang:
                    time.sleep(3)
                    return
                if name in server.slow_headers:  # the status line and headers, a byte every 0.2 s, never ending
                    try:
                        for byte in b"HTTP/1.1 200 OK\r\n" + b"X-Padding: slow\r\n" * 100:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(0.2)
                    except OSError:
                        pass
                    self.close_connection = True
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
                self.send_header("Content-Length", str(server.announce.get(name, len(body))))
                self.end_headers()
                if name in server.trickle:  # a byte now and then: no socket timeout ever fires
                    try:
                        for byte in body:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            server.sent[name] += 1
                            time.sleep(0.05)
                    except OSError:
                        pass
                    return
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
        "files": [{"name": n, "size": len(d), "md5": hashlib.md5(d).hexdigest()} for n, d in files.items()],
        "clips": {"count": 4, "min_bytes": 88244, "rate": 44100, "seconds": 1.0}}))
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
    assert verify("tau2020-mobile", tmp_path / "d") == []


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


def test_headers_that_trickle_are_bounded_like_the_body(server, tmp_path):
    """A server that sends its status line and headers a byte every 0.2 s never lets a read time out; the request's
    status-and-headers phase has its own deadline, named in the error."""
    server.slow_headers.add(f"{ROOT}.meta.zip")
    started = time.monotonic()
    with pytest.raises(download.DownloadError, match=r"meta\.zip: no answer after 1 attempt \(.*the status line "
                                                     r"and headers did not arrive within 1 s of connecting\)"):
        download.download("tau2020-mobile", tmp_path / "h", mirror=server.url, timeout=1.0, retries=0,
                          log=lambda m: None)
    assert time.monotonic() - started < 5


def test_each_phase_is_named_when_it_ends_a_download(server, tmp_path):
    """A server that accepts and never answers: the read timeout of the status phase, named."""
    server.hang.add(f"{ROOT}.meta.zip")
    with pytest.raises(download.DownloadError, match=r"no answer after 1 attempt \(.*(no byte for 0.5 s|status "
                                                     r"line and headers did not arrive within 0.5 s)\)"):
        download.download("tau2020-mobile", tmp_path / "n", mirror=server.url, timeout=0.5, retries=0,
                          log=lambda m: None)


def test_a_server_that_never_accepts_is_named_as_the_connect_phase(server, tmp_path):
    """A listening socket whose backlog is full answers no connection: the connect phase's bound, named."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    waiting = []
    for _ in range(8):  # fill the backlog: later connections are never answered
        peer = socket.socket()
        peer.setblocking(False)
        try:
            peer.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        waiting.append(peer)
    try:
        started = time.monotonic()
        with pytest.raises(download.DownloadError, match=r"no answer after 1 attempt \(ConnectTimeout: no connection "
                                                         r"within 1 s\)"):
            download.download("tau2020-mobile", tmp_path / "c", mirror=f"http://127.0.0.1:{port}/", timeout=1.0,
                              retries=0, log=lambda m: None)
        assert time.monotonic() - started < 5
    finally:
        for peer in waiting:
            peer.close()
        listener.close()


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
        optional.not_applicable("another manifest folder overrides the packaged record")
    assert len(rec.files) == 18 and all(f.url.startswith("https://zenodo.org/records/3819968/") for f in rec.files)
    assert rec.clips.count == 16935 and rec.clips.seconds == 10.0
    assert round(rec.size / 1e9, 1) == 27.4
    assert {f.name for f in rec.files} >= {f"{ROOT}.audio.{i}.zip" for i in range(1, 17)}
    assert all(len(f.md5) == 32 for f in rec.files)


# --- UrbanSound8K and ESC-50: the packaged records, and downloads of tiny archives in their layouts ---------------

def test_the_packaged_urbansound8k_and_esc50_records():
    if "CODECBENCH_DATASET_MANIFESTS" in os.environ:
        optional.not_applicable("another manifest folder overrides the packaged records")
    us8k, esc50 = download.record("urbansound8k"), download.record("esc50")
    (archive,) = us8k.files
    assert (archive.name, archive.size, archive.md5) == ("UrbanSound8K.tar.gz", 6023741708,
                                                         "9aa69802bbf37fb986f71ec1483a196e")
    assert archive.url == "https://zenodo.org/records/1203745/files/UrbanSound8K.tar.gz"
    assert us8k.root == "UrbanSound8K" and us8k.clips.count == 8732
    (archive,) = esc50.files
    assert archive.size is None and archive.md5 is None and archive.max_size == 10**9  # GitHub builds it on request
    assert esc50.root == "ESC-50-master" and esc50.clips.count == 2000 and esc50.clips.seconds == 5.0


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _us8k_archive() -> bytes:
    rows, members = ["slice_file_name,fsID,start,end,salience,fold,classID,class"], {}
    for i, (cls, fold) in enumerate([("dog_bark", 1), ("siren", 1), ("dog_bark", 2), ("siren", 10)]):
        name = f"{100 + i}-{i}-0-0.wav"
        rows.append(f"{name},{100 + i},0.0,1.0,1,{fold},{i % 2},{cls}")
        members[f"UrbanSound8K/audio/fold{fold}/{name}"] = _wav(i)
    members["UrbanSound8K/metadata/UrbanSound8K.csv"] = ("\n".join(rows) + "\n").encode()
    return _tar_gz(members)


def _esc50_archive() -> bytes:
    rows, members = ["filename,fold,target,category,esc10,src_file,take"], {}
    for i, (cls, fold) in enumerate([("dog", 1), ("rain", 2), ("dog", 5), ("rain", 5)]):
        name = f"{fold}-{1000 + i}-A-{i}.wav"
        rows.append(f"{name},{fold},{i % 2},{cls},True,{1000 + i},A")
        members[f"ESC-50-master/audio/{name}"] = _wav(i)
    members["ESC-50-master/meta/esc50.csv"] = ("\n".join(rows) + "\n").encode()
    return _zip(members)


@pytest.fixture
def fold_server(tmp_path, monkeypatch):
    files = {"UrbanSound8K.tar.gz": _us8k_archive(), "ESC-50-master.zip": _esc50_archive()}
    served = Server(files)
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    us8k = files["UrbanSound8K.tar.gz"]
    (manifests / "urbansound8k.json").write_text(json.dumps({
        "name": "urbansound8k", "title": "UrbanSound8K (test copy)", "licence": "test", "source": "test",
        "url": served.url, "root": "UrbanSound8K", "layout": "urbansound8k",
        "files": [{"name": "UrbanSound8K.tar.gz", "size": len(us8k), "md5": hashlib.md5(us8k).hexdigest()}],
        "clips": {"count": 4, "min_bytes": 45, "max_seconds": 4.0}}))
    (manifests / "esc50.json").write_text(json.dumps({  # like the real record: no size, no checksum
        "name": "esc50", "title": "ESC-50 (test copy)", "licence": "test", "source": "test",
        "url": served.url, "root": "ESC-50-master", "layout": "esc50",
        "files": [{"name": "ESC-50-master.zip", "url": served.url + "ESC-50-master.zip", "max_size": 10**6}],
        "clips": {"count": 4, "min_bytes": 88244, "rate": 44100, "seconds": 1.0}}))
    monkeypatch.setenv("CODECBENCH_DATASET_MANIFESTS", str(manifests))
    yield served
    served.close()


def test_urbansound8k_and_esc50_download_verify_and_load_by_folds(fold_server, tmp_path, capsys):
    assert main(["dataset", "list"]) == 0
    listing = capsys.readouterr().out
    assert "urbansound8k" in listing and "esc50" in listing and "up to 0.0 GB" in listing
    for name, root, folds, sizes in [("urbansound8k", "UrbanSound8K", "train=1-2,evaluate=10", (3, 1)),
                                     ("esc50", "ESC-50-master", "train=1-2,evaluate=5", (2, 2))]:
        target = tmp_path / name
        assert main(["dataset", "download", name, "--to", str(target)]) == 0
        archive = "UrbanSound8K.tar.gz" if name == "urbansound8k" else "ESC-50-master.zip"
        unpacking = [line for line in capsys.readouterr().err.splitlines() if f"unpacking {archive}" in line]
        assert unpacking and "(100%" in unpacking[-1], unpacking  # progress while unpacking, tar and zip alike
        assert main(["dataset", "verify", name, str(target), "--deep"]) == 0, capsys.readouterr().out
        assert "complete" in capsys.readouterr().out
        dataset = load_dataset(target / root, folds=parse_folds(folds))
        assert (len(dataset.clips("train")), len(dataset.clips("evaluate"))) == sizes
    assert fold_server.sent["ESC-50-master.zip"] == len(fold_server.files["ESC-50-master.zip"])


# --- hostile servers and records (#31): every case a named error, nothing written outside the folder ------------

def test_a_server_sending_too_much_is_cut_at_the_records_size(server, tmp_path):
    name = f"{ROOT}.meta.zip"
    server.announce[name] = 200 * 10**6  # a huge Content-Length: refused before a byte is read
    with pytest.raises(download.DownloadError, match=r"announces 200,000,000 bytes, more than the record's"):
        download.download("tau2020-mobile", tmp_path / "a", mirror=server.url, log=lambda m: None)
    assert not server.sent[name] or server.sent[name] <= len(server.files[name])
    part = tmp_path / "a" / "archives" / f"{name}.part"
    assert not part.exists() or part.stat().st_size == 0


def test_a_body_without_a_published_size_is_capped(fold_server, tmp_path, monkeypatch):
    fold_server.announce["ESC-50-master.zip"] = 5 * 10**6  # more than the record's ceiling of 10**6
    with pytest.raises(download.DownloadError, match=r"more than the record's 1,000,000"):
        download.download("esc50", tmp_path / "e", log=lambda m: None)


def test_a_trickling_server_is_stopped_by_the_stall_rule(server, tmp_path):
    name = f"{ROOT}.meta.zip"
    server.trickle.add(name)
    started = time.monotonic()
    with pytest.raises(download.DownloadError, match=r"stalled: \d+ bytes in the last 1 s \(the minimum is 10,000 "
                                                     r"bytes per 1 s\).*same command resumes"):
        download.download("tau2020-mobile", tmp_path / "t", mirror=server.url, stall_bytes=10_000, stall_seconds=1,
                          retries=0, log=lambda m: None)
    assert time.monotonic() - started < 10


def test_a_redirect_loop_and_a_file_mirror_are_named_errors(server, tmp_path):
    server.loop.add(f"{ROOT}.meta.zip")
    with pytest.raises(download.DownloadError, match=r"more than 10 redirects"):
        download.download("tau2020-mobile", tmp_path / "r", mirror=server.url, log=lambda m: None)
    with pytest.raises(download.DownloadError, match=r"--mirror: 'file:///tmp' is not an http\(s\) URL"):
        download.download("tau2020-mobile", tmp_path / "f", mirror="file:///tmp", log=lambda m: None)


@pytest.mark.parametrize("wrong", ["zeros", "another valid zip"])
def test_an_archive_already_present_is_checked_before_it_is_unpacked(server, tmp_path, wrong):
    target = tmp_path / "d"
    (target / "archives").mkdir(parents=True)
    name = f"{ROOT}.audio.1.zip"
    planted = bytes(1000) if wrong == "zeros" else _zip({f"{ROOT}/audio/evil.wav": _wav(9)})
    (target / "archives" / name).write_bytes(planted)
    lines = []
    download.download("tau2020-mobile", target, mirror=server.url, log=lines.append)
    assert any("not the publisher's file" in line and "rejected" in line for line in lines)
    assert not (target / ROOT / "audio" / "evil.wav").exists()
    assert (target / "archives" / f"{name}.rejected").read_bytes() == planted  # set aside, not destroyed
    assert verify("tau2020-mobile", target) == []


@pytest.mark.parametrize("field, value, message", [
    ("root", "../outside", r"root '\.\./outside' must be a relative folder"),
    ("root", "/abs", r"root '/abs' must be a relative folder"),
    ("file", "../../evil.zip", r"name '\.\./\.\./evil\.zip' must be a plain file name"),
    ("url", "file:///etc/", r"url: 'file:///etc/' is not an http\(s\) URL"),
])
def test_a_record_cannot_point_outside_the_download_folder(tmp_path, monkeypatch, field, value, message):
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    data = {"name": "evil", "title": "t", "licence": "t", "source": "t", "url": "http://127.0.0.1:9/", "root": "ok",
            "files": [{"name": "a.zip", "size": 10, "md5": "0" * 32}]}
    if field == "file":
        data["files"][0]["name"] = value
    else:
        data[field] = value
    (manifests / "evil.json").write_text(json.dumps(data))
    monkeypatch.setenv("CODECBENCH_DATASET_MANIFESTS", str(manifests))
    with pytest.raises(download.DownloadError, match=message):
        download.download("evil", tmp_path / "to", log=lambda m: None)
    assert not (tmp_path / "outside").exists() and not (tmp_path.parent / "evil.zip").exists()


@pytest.mark.parametrize("clips, message", [
    ({"count": "many"}, r"clips\.count: 'many' must be a positive whole number or null"),
    ({"seconds": "ten"}, r"clips\.seconds: 'ten' must be a positive number or null"),
    ({"rate": 44100.5}, r"clips\.rate: 44100\.5 must be a positive whole number"),
    ({"min_bytes": None}, r"clips\.min_bytes: None must be a positive whole number"),
    ({"length": 3}, r"clips: unknown field\(s\) length"),
    ([1, 2], r"clips: expected an object"),
])
def test_a_record_with_clip_fields_that_are_not_numbers_is_named(tmp_path, monkeypatch, capsys, clips, message):
    """`dataset list` crashed on a record whose clip fields were text; every command that reads records names it."""
    from codecbench.cli import main

    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "odd.json").write_text(json.dumps({
        "name": "odd", "title": "t", "licence": "t", "source": "t", "url": "http://127.0.0.1:9/", "root": "ok",
        "files": [{"name": "a.zip", "size": 10, "md5": "0" * 32}], "clips": clips}))
    monkeypatch.setenv("CODECBENCH_DATASET_MANIFESTS", str(manifests))
    assert main(["dataset", "list"]) == 2
    err = capsys.readouterr().err
    assert "odd.json" in err and re.search(message, err) and "Traceback" not in err


@pytest.mark.parametrize("kind", ["zip symlink", "zip traversal", "tar symlink", "tar device"])
def test_an_archive_with_a_link_or_escaping_member_is_refused_whole(tmp_path, monkeypatch, kind):
    if kind.startswith("zip"):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as z:
            z.writestr(f"{ROOT}/audio/a.wav", _wav(1))
            if kind == "zip symlink":
                info = zipfile.ZipInfo(f"{ROOT}/audio/link")
                info.external_attr = (0o120777 << 16)
                z.writestr(info, "/etc/passwd")
            else:
                z.writestr("../escaped.txt", b"x")
        data, name = buffer.getvalue(), "x.zip"
    else:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as t:
            ok = tarfile.TarInfo(f"{ROOT}/audio/a.wav")
            payload = _wav(1)
            ok.size = len(payload)
            t.addfile(ok, io.BytesIO(payload))
            bad = tarfile.TarInfo(f"{ROOT}/audio/link")
            bad.type = tarfile.SYMTYPE if kind == "tar symlink" else tarfile.CHRTYPE
            bad.linkname = "/dev/zero"
            t.addfile(bad)
        data, name = buffer.getvalue(), "x.tar.gz"
    served = Server({name: data})
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "x.json").write_text(json.dumps({
        "name": "x", "title": "t", "licence": "t", "source": "t", "url": served.url, "root": ROOT,
        "files": [{"name": name, "size": len(data), "md5": hashlib.md5(data).hexdigest()}]}))
    monkeypatch.setenv("CODECBENCH_DATASET_MANIFESTS", str(manifests))
    try:
        with pytest.raises(download.DownloadError, match=r"(link or special file, which a dataset archive does not hold"
                                                         r"|outside the download folder); "
                                                         r"nothing of this archive was unpacked"):
            download.download("x", tmp_path / "to", log=lambda m: None)
    finally:
        served.close()
    assert not (tmp_path / "to" / ROOT).exists() and not (tmp_path / "escaped.txt").exists()
    assert not list((tmp_path / "to").glob(".unpacking-*"))


def test_two_downloads_into_one_folder_and_a_file_as_folder(server, tmp_path, capsys):
    from codecbench.core.fsutil import claim_folder
    from codecbench.errors import FolderBusy

    with claim_folder(tmp_path / "d", "download"):
        with pytest.raises(FolderBusy, match=rf"{tmp_path / 'd'}: another codecbench process is using this folder "
                                             rf"\(pid {os.getpid()}: download"):
            download.download("tau2020-mobile", tmp_path / "d", mirror=server.url, log=lambda m: None)
    (tmp_path / "file").write_text("mine")
    assert main(["dataset", "download", "tau2020-mobile", "--mirror", server.url, "--to", str(tmp_path / "file")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "file").read_text() == "mine"


def test_verify_checks_every_clips_size_and_deep_its_content(server, tmp_path, capsys):
    target = tmp_path / "data"
    download.download("tau2020-mobile", target, mirror=server.url, log=lambda m: None)
    audio = target / ROOT / "audio"
    (audio / "airport-london-0-a.wav").write_bytes((audio / "airport-london-0-a.wav").read_bytes()[:100])
    problems = verify("tau2020-mobile", target)
    assert len(problems) == 1 and "1 listed clips are damaged" in problems[0] and "100 bytes" in problems[0]
    (audio / "airport-london-0-a.wav").unlink()
    os.symlink("/dev/zero", audio / "airport-london-0-a.wav")  # a link to a device: never read
    assert "not a regular file" in verify("tau2020-mobile", target)[0]
    (audio / "airport-london-0-a.wav").unlink()
    longer = io.BytesIO()
    sf.write(longer, np.zeros(44100 + 4410, np.float32), 44100, format="WAV", subtype="PCM_16")
    (audio / "airport-london-0-a.wav").write_bytes(longer.getvalue())
    assert verify("tau2020-mobile", target) == []  # the size is plausible ...
    (deep,) = verify("tau2020-mobile", target, deep=True)  # ... the length is not
    assert "1.100 s long, the dataset's clips are 1 s" in deep
    assert main(["dataset", "verify", "tau2020-mobile", str(target), "--deep"]) == 1
    assert "1 problem\n" in capsys.readouterr().out


def test_an_archive_larger_than_the_free_disk_is_refused_before_unpacking(tmp_path, monkeypatch):
    """A 200-KB zip that declares 200 MB of members, onto a disk with 50 MB free: refused by its declared sizes,
    nothing written (it was an `OSError [Errno 28]` half-way)."""
    import shutil as shutil_module
    from collections import namedtuple

    from codecbench.datasets import unpack as unpack_module

    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{ROOT}/audio/zeros.wav", bytes(200 << 20))
    assert archive.stat().st_size < 400_000
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil_module, "disk_usage", lambda path: usage(1 << 40, 0, 50 << 20))
    target = tmp_path / "to"
    (target / "archives").mkdir(parents=True)
    with pytest.raises(download.DownloadError, match=r"bomb\.zip: unpacks to 209,715,200 bytes .* 52,428,800 bytes "
                                                     r"free"):
        unpack_module.unpack(archive, target, log=lambda m: None)
    assert not (target / ROOT).exists() and not list(target.glob(".unpacking-*"))


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_a_member_that_is_both_file_and_folder_is_refused(tmp_path, kind):
    from codecbench.datasets import unpack as unpack_module

    members = {f"{ROOT}/a": b"a file", f"{ROOT}/a/b.wav": _wav(2)}
    archive = tmp_path / f"clash.{'zip' if kind == 'zip' else 'tar.gz'}"
    archive.write_bytes(_zip(members) if kind == "zip" else _tar_gz(members))
    target = tmp_path / "to"
    (target / "archives").mkdir(parents=True)
    with pytest.raises(download.DownloadError, match=rf"member '{ROOT}/a' is a file, and member '{ROOT}/a/b.wav' "
                                                     "needs a folder of that name"):
        unpack_module.unpack(archive, target, log=lambda m: None)
    assert not (target / ROOT).exists()
