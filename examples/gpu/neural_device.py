"""How far a neural codec's decode on the accelerator is from the CPU's, for the same codes (EnCodec 24 kHz and
DAC 44.1 kHz, with the weights of $CODECBENCH_CODEC_WEIGHTS, else randomly initialised ones built like the tests'),
and the seconds per 10-s clip of each. Prints one JSON object; part of examples/gpu/check.sh."""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> int:
    try:
        import torch
    except ImportError:
        print(json.dumps({"skipped": "PyTorch is not installed (pip install 'codecbench[neural]')"}))
        return 0
    if not torch.cuda.is_available():
        print(json.dumps({"skipped": "no CUDA device for PyTorch"}))
        return 0
    from codecbench import codecs
    from codecbench.codecs import neural

    weights = "given" if os.environ.get(neural.WEIGHTS_ENV) else "random (tiny, built like the tests')"
    if weights != "given":
        from tests import checkpoints
        os.environ[neural.WEIGHTS_ENV] = str(checkpoints.codec_weights(Path(tempfile.mkdtemp())))
    clip = (0.1 * np.random.default_rng(0).standard_normal(441000)).astype(np.float32)
    out: dict = {"weights": weights, "device": torch.cuda.get_device_name(0), "conditions": {}}
    for name in ("encodec@6", "dac@8"):
        cond = codecs.parse_condition(name)
        os.environ[neural.DEVICE_ENV] = "cpu"
        codecs.forget_availability()
        start = time.perf_counter()
        bitstream = codecs.encode(clip, 44100, cond)
        cpu_s = time.perf_counter() - start
        facts = neural.device_difference(cond.spec, bitstream, "cuda")
        loaded = neural.load(cond.codec, str(neural.weights_folder(cond.spec)[0]), "cuda", neural.precision())
        neural.decode_on(loaded, bitstream)  # warm
        torch.cuda.synchronize()
        start = time.perf_counter()
        neural.decode_on(loaded, bitstream)
        torch.cuda.synchronize()
        out["conditions"][name] = {**facts, "cpu_encode_s": cpu_s, "cuda_decode_s": time.perf_counter() - start}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
