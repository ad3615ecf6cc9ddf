"""The diagnosis of why a model fails under a codec, validated on a case built to have a known answer: clips whose
top band a "codec" empties, scored by a model that reads only the low bands, behind a front-end with and without
per-clip min-max scaling."""
import json

import numpy as np
import pytest

from codecbench.cli import main
from codecbench.models.kinds import ScoringModel
from codecbench.report import render
from codecbench.results.diagnoses import Diagnosis, read_diagnoses
from codecbench.run.diagnose import diagnose
from codecbench.signal.frontends import FrontEnd

SR = 16000
CLASSES = ["quiet", "loud"]


def _band_noise(rng, n, low, high):
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SR)
    spectrum[(freqs < low) | (freqs > high)] = 0
    y = np.fft.irfft(spectrum, n)
    return y / np.std(y)


def _lowpass(x, cut):
    spectrum = np.fft.rfft(x)
    spectrum[np.fft.rfftfreq(len(x), 1 / SR) > cut] = 0
    return np.fft.irfft(spectrum, len(x)).astype(np.float32)


@pytest.fixture(scope="module")
def emptied_top_band():
    """40 one-second clips, quiet or loud below 1.5 kHz over the same weak broadband noise, and their versions with
    everything above 6 kHz removed (the top band emptied, as a low-rate codec does)."""
    rng = np.random.default_rng(0)
    clips, labels = [], []
    for i in range(40):
        loud = i % 2
        x = ((0.3 if loud else 0.1) * _band_noise(rng, SR, 50, 1500) + 0.02 * _band_noise(rng, SR, 1500, 7900))
        x = x.astype(np.float32)
        clips.append((x, _lowpass(x, 6000), SR))
        labels.append(loud)
    return clips, labels


def _low_band_model(normalise, clips, labels):
    """A model that reads only the six lowest mel bins, thresholded where the uncoded classes separate."""
    frontend = FrontEnd(kind="logmel", sample_rate=SR, n_fft=512, hop_length=256, n_mels=32, normalise=normalise,
                        deltas=False)

    def low(batch):
        return batch[:, :6, :, 0].mean(axis=(1, 2))

    values = low(np.stack([frontend(u, r) for u, _, r in clips]))
    quiet, loud = (values[np.array(labels) == k].mean() for k in (0, 1))

    def scorer(batch):
        p = 1 / (1 + np.exp(-20 * np.sign(loud - quiet) * (low(batch) - (quiet + loud) / 2)))
        return np.stack([1 - p, p], axis=1)

    return ScoringModel(f"lowband-{normalise}", "python", frontend, CLASSES, scorer)


def test_an_emptied_top_band_costs_accuracy_through_min_max_scaling(emptied_top_band):
    clips, labels = emptied_top_band
    found = diagnose(_low_band_model("minmax", clips, labels), clips, labels, CLASSES, condition="lowpass",
                     n_bands=4)
    top = found.bands[-1]
    assert found.accuracy_uncoded > 0.9 and found.accuracy_coded < 0.7
    assert found.ranked[0] is top and top.change_db < -15  # the codec emptied the top band only
    assert all(abs(b.change_db) < 0.5 for b in found.bands[:-1])
    # ... but min-max scaling moved every band of the model's input, and so the low bands it reads
    assert all(b.input_change > 0.1 for b in found.bands[:-1])
    assert found.cost(top) > 0.3 and found.direct_cost(top) < 0.05
    assert "top band" in found.verdict and "min-max scaling" in found.verdict and "floor" in found.verdict


def test_without_min_max_scaling_the_same_codec_costs_nothing(emptied_top_band):
    clips, labels = emptied_top_band
    found = diagnose(_low_band_model("none", clips, labels), clips, labels, CLASSES, condition="lowpass",
                     n_bands=4)
    assert found.accuracy_coded == found.accuracy_uncoded == 1.0
    assert all(abs(b.input_change) < 0.05 for b in found.bands[:-1])  # the low bands the model reads stay put
    assert found.bands[-1].change_db < -15
    assert "no measurable accuracy" in found.verdict


def test_a_diagnosis_is_written_read_back_and_reported(emptied_top_band, tmp_path):
    clips, labels = emptied_top_band
    found = diagnose(_low_band_model("minmax", clips, labels), clips, labels, CLASSES, condition="lowpass",
                     n_bands=4)
    paths = found.write(tmp_path)
    assert all(p.is_file() for p in paths.values())
    assert read_diagnoses(tmp_path) == [found]
    assert Diagnosis.from_dict(json.loads(paths["json"].read_text())).verdict == found.verdict
    table = paths["markdown"].read_text()
    assert table.index("3.") < table.index("0.0-")  # bands ranked by cost: the top band first


def test_a_waveform_model_is_diagnosed_in_stft_bands(emptied_top_band):
    """A model fed waveforms (a Hugging Face checkpoint's kind) that compares the low band with the top band: the
    codec's emptied top band costs it all of the loss, found by coding STFT bands alone; the signal facts see it."""
    clips, labels = emptied_top_band

    def ratio(batch):
        spectrum = np.abs(np.fft.rfft(batch, axis=1)) ** 2
        freqs = np.fft.rfftfreq(batch.shape[1], 1 / SR)
        return np.log(spectrum[:, freqs < 1500].sum(axis=1) / (spectrum[:, freqs > 6500].sum(axis=1) + 1e-9))

    values = ratio(np.stack([u for u, _, _ in clips]))
    cut = (values[np.array(labels) == 0].mean() + values[np.array(labels) == 1].mean()) / 2

    def scorer(batch):
        loud = (ratio(batch) > cut).astype(float)
        return np.stack([1 - loud, loud], axis=1)

    model = ScoringModel("w", "python", FrontEnd("waveform", SR), CLASSES, scorer)
    found = diagnose(model, clips, labels, CLASSES, condition="lowpass", n_bands=4)
    assert found.normalise == "none" and found.accuracy_uncoded == 1.0 and found.accuracy_coded == 0.5
    top = found.ranked[0]
    assert top.index == 3 and found.cost(top) == 0.5 and all(found.cost(b) == 0 for b in found.bands[:3])
    assert top.change_db < -2 and abs(found.bands[0].change_db) < 0.1  # 6-8 kHz emptied of 3.7-8 kHz
    assert found.signal["snr_db"] < 40 and found.signal["mel_distance_db"] > 1
    assert "top band" in found.verdict


def test_the_command_diagnoses_a_zoo_model_and_the_report_shows_it(tiny, tmp_path, capsys):
    results = tmp_path / "reports"
    args = ["--model-dir", str(tiny["zoo"].root), "--dataset", tiny["spec"], "--cache-dir", str(tiny["cache"].root),
            "--results", str(results)]
    assert main(["diagnose", "--model", "base", "--condition", "mp3@32", "--bands", "4", "--clips", "8", *args]) == 0
    out = capsys.readouterr().out
    assert "Verdict:" in out and "diagnosis-base-mp3@32.png" in out
    assert main(["diagnose", "--model", "base", "--condition", "wav", *args]) == 2
    assert "a coded condition" in capsys.readouterr().err
    assert main(["diagnose", "--model", "base", "--condition", "mp3@32,sbc@64", *args]) == 2
    assert "name one coded condition" in capsys.readouterr().err
    # a results folder with a run (the committed example's) and the diagnosis: the report has its section
    import shutil
    from pathlib import Path

    shutil.copyfile(Path(__file__).parent.parent / "reports" / "example" / "results.json", results / "results.json")
    markdown, written = render(results, tmp_path / "out", formats=("md", "html"))
    assert "## Why models fail: diagnoses" in markdown and "Verdict:" in markdown
    assert (tmp_path / "out" / "diagnosis-base-mp3@32.png") in written
    page = (tmp_path / "out" / "html" / "index.html").read_text()  # on the page too, its figure inlined
    assert '"diagnoses":[{"model":"base","condition":"mp3@32","verdict":' in page and "data:image/png;base64," in page
