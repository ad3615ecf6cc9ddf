"""External-command backends for HE-AAC where libfdk-aac exists only as a program: ``ffmpeg`` or ``fdkaac``.

The command writes an MP4 file; the whole file is the bitstream, demuxed and decoded by libavformat
(whose edit lists trim the priming), so :attr:`Bitstream.decoder` is ``"container"``.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile

import numpy as np
import soundfile as sf

from codecbench.codecs.backend import Backend, register
from codecbench.codecs.bitstream import Bitstream, pack
from codecbench.codecs.pyav import decode_container
from codecbench.codecs.table import CodecSpec, Condition
from codecbench.errors import CodecError


@functools.lru_cache(maxsize=None)
def ffmpeg_has_encoder(encoder: str) -> bool:
    """Whether an ``ffmpeg`` on PATH lists ``encoder``."""
    exe = shutil.which("ffmpeg")
    if not exe:
        return False
    try:
        out = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return any(line.split()[1:2] == [encoder] for line in out.splitlines() if line.strip())


class ExternalBackend(Backend):
    """One command-line encoder; its HE-AAC v1 output is decoded in-process."""

    decoders = ()  # "container" is the PyAV backend's

    def __init__(self, tool: str, library: str):
        self.name, self._library = tool, library

    def unavailable(self, spec: CodecSpec) -> str | None:
        found = ffmpeg_has_encoder("libfdk_aac") if self.name == "ffmpeg" else shutil.which(self.name) is not None
        return None if found else f"no {self.name} command with libfdk-aac on PATH"

    def library(self, spec: CodecSpec) -> str:
        return self._library

    def command(self, src: str, dst: str, cond: Condition) -> list[str]:
        """The command line that codes ``src`` (16-bit WAV) to ``dst`` (MP4) as HE-AAC v1."""
        if self.name == "ffmpeg":
            return [shutil.which("ffmpeg") or "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                    "-i", src, "-c:a", "libfdk_aac", "-profile:a", "aac_he", "-b:a", f"{cond.kbps}k", dst]
        # fdkaac: profile 5 = HE-AAC v1; -G 1 writes ISO edit lists so the demuxer trims priming
        return [shutil.which("fdkaac") or "fdkaac", "-S", "-p", "5", "-b", str(cond.kbps * 1000), "-G", "1",
                "-o", dst, src]

    def encode(self, x: np.ndarray, codec_sr: int, cond: Condition, sample_rate: int, n: int) -> Bitstream:

        with tempfile.TemporaryDirectory(prefix="codecbench-") as tmp:
            src, dst = os.path.join(tmp, "in.wav"), os.path.join(tmp, "out.m4a")
            sf.write(src, x, codec_sr, subtype="PCM_16")
            proc = subprocess.run(self.command(src, dst, cond), capture_output=True, text=True)
            if proc.returncode != 0:
                raise CodecError(f"{cond.name}: {self.name} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
            with open(dst, "rb") as fh:
                payload = fh.read()
        _, nbytes = decode_container(payload)
        return pack(cond, self.name, "container", sample_rate, codec_sr, n, len(x), [payload], b"", 0, nbytes)


register(ExternalBackend("ffmpeg", "ffmpeg CLI libfdk_aac"))
register(ExternalBackend("fdkaac", "fdkaac CLI (libfdk-aac)"))
