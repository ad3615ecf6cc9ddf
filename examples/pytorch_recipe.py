"""Harden a PyTorch scene classifier against audio coding with codecbench's codec augmentation.

Trains the same small CNN (log-mel computed inside the network, on 16 kHz waveforms) twice on the embedded
default's training split, once on the uncoded clips and once with codec augmentation drawn per clip and epoch
(MP3, AAC, HE-AAC where libfdk-aac is installed, Opus, each over a range of bit rates), then benchmarks both with
``codecbench.evaluate`` on the evaluation split, uncoded and under MP3 at 32 kbps, and compares them clip by clip
(exact McNemar test).

    pip install torch --index-url https://download.pytorch.org/whl/cpu
    python examples/pytorch_recipe.py            # about 10 minutes on 2 CPU cores

The Keras flow is the same with ``pool.keras_sequence(batch_size)`` in ``model.fit`` (see docs/augment.md).
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def build_network(n_classes: int, sample_rate: int = 16000, n_mels: int = 64):
    """A small CNN on waveforms: power spectrogram -> log-mel (a fixed layer) -> three conv blocks -> classes."""
    import librosa
    import torch
    from torch import nn

    class SceneCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mel", torch.from_numpy(librosa.filters.mel(sr=sample_rate, n_fft=1024,
                                                                              n_mels=n_mels)).float())
            self.register_buffer("window", torch.hann_window(1024))
            blocks = []
            for c_in, c_out in ((1, 16), (16, 32), (32, 64)):
                blocks += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)]
            self.features = nn.Sequential(*blocks)
            self.head = nn.Linear(64, n_classes)

        def forward(self, wave):
            spec = torch.stft(wave, 1024, hop_length=320, window=self.window, return_complex=True).abs() ** 2
            x = torch.log(self.mel @ spec + 1e-6)
            x = (x - x.mean(dim=(1, 2), keepdim=True)) / (x.std(dim=(1, 2), keepdim=True) + 1e-5)
            x = self.features(x[:, None])
            return self.head(x.mean(dim=(2, 3)))

    return SceneCNN()


class Scorer:
    """What ``codecbench.evaluate`` needs of a model: ``sample_rate``, ``class_names``, ``predict(batch)``."""

    sample_rate = 16000

    def __init__(self, name: str, network, class_names):
        self.name, self.network, self.class_names = name, network, list(class_names)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        import torch

        self.network.eval()
        with torch.no_grad():
            return torch.softmax(self.network(torch.from_numpy(np.asarray(batch, dtype=np.float32))), 1).numpy()


def train(pool, n_classes: int, *, epochs: int, seed: int, workers: int, log=print):
    """Train the CNN on ``pool`` (a :class:`codecbench.augment.CodecAugmentedDataset`), epoch by epoch."""
    import torch

    torch.manual_seed(seed)
    network = build_network(n_classes)
    optimiser = torch.optim.Adam(network.parameters(), lr=2e-3)
    data = pool.torch_dataset()
    for epoch in range(epochs):
        start = time.perf_counter()
        data.set_epoch(epoch)
        counts = pool.prepare()  # this epoch's conditions, coded in parallel where the cache lacks them
        loader = torch.utils.data.DataLoader(data, batch_size=32, shuffle=True, num_workers=workers,
                                             generator=torch.Generator().manual_seed(seed * 1000 + epoch))
        network.train()
        total = correct = 0
        for x, y in loader:
            optimiser.zero_grad()
            out = network(x.float())
            loss = torch.nn.functional.cross_entropy(out, y)
            loss.backward()
            optimiser.step()
            total += len(y)
            correct += int((out.argmax(1) == y).sum())
        log(f"  epoch {epoch + 1}/{epochs}: training accuracy {correct / total:.3f} ({time.perf_counter() - start:.0f} "
            f"s; pairs coded so far {counts['coded']}, read from the cache {counts['cached']})")
    return network


def main(argv=None) -> dict:
    import codecbench
    from codecbench.augment import CodecAugmentedDataset
    from codecbench.codecs import availability
    from codecbench.core.cache import Cache
    from codecbench.datasets import load_dataset
    from codecbench.results.stats import paired_comparison

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="synthetic", help="a codecbench dataset (default: the embedded one)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--jobs", type=int, default=None, help="coding worker processes (default: every core)")
    args = parser.parse_args(argv)

    dataset = load_dataset(args.dataset, cache_dir=args.cache_dir)
    cache = Cache(args.cache_dir)
    families = {"mp3": 2, "aac": 1, "opus": 1}
    bitrates = {"mp3": (32, 96), "aac": (24, 64), "opus": (12, 48)}
    if availability("he-aac@24")[0]:
        families["he-aac"], bitrates["he-aac"] = 1, (16, 32)
    common = dict(cache=cache, frontend="waveform:16000", seed=args.seed, jobs=args.jobs)
    plain = CodecAugmentedDataset(dataset, conditions=["wav"], **common)
    augmented = CodecAugmentedDataset(dataset, codecs=families, bitrates=bitrates, p=0.8, **common)
    print(f"training on {len(plain)} clips of {dataset.name}; augmentation: {', '.join(augmented.draw.describe())}, "
          f"p=0.8")
    n = len(dataset.class_names)
    models = []
    for name, pool in (("plain", plain), ("augmented", augmented)):
        print(f"{name}:")
        models.append(Scorer(name, train(pool, n, epochs=args.epochs, seed=args.seed, workers=args.workers),
                             dataset.class_names))
    frame = codecbench.evaluate(models, dataset=args.dataset, cache_dir=args.cache_dir, conditions=["wav", "mp3@32"],
                                jobs=args.jobs)
    print(frame[["model", "condition", "accuracy", "ci_low", "ci_high"]].to_string(index=False))
    records = frame.attrs["records"]
    result = paired_comparison(records[("plain", "mp3@32")], records[("augmented", "mp3@32")])
    print(f"mp3@32: plain {result['reference_accuracy']:.3f} -> augmented {result['candidate_accuracy']:.3f} "
          f"on {result['n']} clips; exact McNemar p = {result['p_value']:.2g} ({result['reference_only']} clips only "
          f"plain got right, {result['candidate_only']} only augmented)")
    return {"frame": frame, "mp3@32": result}


if __name__ == "__main__":
    main()
