"""A command writes only what it owns (#31, data loss): ``export`` onto a dataset, into a folder holding a split
listing or audio it did not write, or after a source clip changed; ``reproduce --out`` into a folder with foreign
content or a foreign ``zoo/base``; either given a regular file as its folder; two processes on one folder."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from codecbench.cli import main
from codecbench.codecs import parse_condition as C
from codecbench.core.cache import Cache
from codecbench.datasets import load_dataset

DATA = "synthetic:train=1,evaluate=2,duration=1.0,seed=9"


@pytest.fixture(scope="module")
def tau_source(tmp_path_factory):
    """The synthetic set, generated once for this module's tests."""
    return load_dataset(DATA, cache_dir=tmp_path_factory.mktemp("ownership") / "cache").root


@pytest.fixture
def tau_copy(tau_source, tmp_path):
    """A small dataset in the TAU layout that the test may change (a copy of the synthetic set), and an empty
    cache."""
    root = tmp_path / "dataset"
    shutil.copytree(tau_source, root)
    return load_dataset(root, splits=("evaluate",)), Cache(tmp_path / "cache")


def test_export_refuses_the_datasets_own_folder_and_foreign_files(tau_copy, tmp_path):
    from codecbench.store.export import ExportError, export

    dataset, cache = tau_copy
    listing = dataset.root / "evaluation_setup" / "fold1_evaluate.csv"
    before = listing.read_bytes()
    for inside in (dataset.root, dataset.root / "exported"):
        with pytest.raises(ExportError, match="lies inside the source dataset"):
            export(dataset, "evaluate", [C("mp3@32")], inside, cache, jobs=1)
    assert listing.read_bytes() == before and not (dataset.root / "exported").exists()
    target = tmp_path / "target"
    (target / "evaluation_setup").mkdir(parents=True)
    (target / "evaluation_setup" / "fold1_evaluate.csv").write_text("someone else's listing\n")
    with pytest.raises(ExportError, match="a split listing this export did not write; it is never overwritten"):
        export(dataset, "evaluate", [C("mp3@32")], target, cache, jobs=1)
    assert (target / "evaluation_setup" / "fold1_evaluate.csv").read_text() == "someone else's listing\n"
    other = tmp_path / "other"
    key = dataset.clips("evaluate")[0].key
    foreign = other / "audio" / "mp3_32" / key
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(b"another tool's file")
    with pytest.raises(ExportError, match="a file this export did not write"):
        export(dataset, "evaluate", [C("mp3@32")], other, cache, jobs=1)
    assert foreign.read_bytes() == b"another tool's file"


def test_export_rewrites_a_file_whose_source_changed(tau_copy, tmp_path):
    from codecbench.store.export import export

    dataset, cache = tau_copy
    target = tmp_path / "coded"
    first = export(dataset, "evaluate", [C("wav")], target, cache, jobs=1)
    n = len(dataset.clips("evaluate"))
    assert first.written == n
    clip = dataset.clips("evaluate")[0]
    out = target / "audio" / "wav" / clip.key
    x, rate = sf.read(clip.path)
    sf.write(clip.path, np.clip(-x, -1, 1), rate, subtype="PCM_16")  # the source changes; its name does not
    again = export(load_dataset(dataset.root, splits=("evaluate",)), "evaluate", [C("wav")], target, cache, jobs=1)
    assert (again.written, again.skipped) == (1, n - 1)
    np.testing.assert_allclose(sf.read(out)[0], sf.read(clip.path)[0], atol=1e-4)


def test_export_never_writes_over_what_the_user_changed(tau_copy, tmp_path):
    """Export, add a row to the exported listing (or edit an exported file), export again: refused, naming the file,
    and the user's change is kept; restored, the export runs again. Chains get portable folder names."""
    from codecbench.store.export import ExportError, condition_folder, export

    dataset, cache = tau_copy
    target = tmp_path / "coded"
    export(dataset, "evaluate", [C("wav")], target, cache, jobs=1)
    listing = target / "evaluation_setup" / "fold1_evaluate.csv"
    original = listing.read_text()
    listing.write_text(original + "audio/wav/mine.wav\tpark\twav\tmine.wav\n")
    with pytest.raises(ExportError, match="fold1_evaluate.csv: changed since this export wrote it"):
        export(dataset, "evaluate", [C("wav")], target, cache, jobs=1)
    assert listing.read_text().endswith("mine.wav\n")
    listing.write_text(original)
    clip = dataset.clips("evaluate")[0]
    edited = target / "audio" / "wav" / clip.key
    sf.write(edited, np.zeros(100), 44100, subtype="PCM_24")
    with pytest.raises(ExportError, match=f"{clip.key}: changed since this export wrote it"):
        export(dataset, "evaluate", [C("wav")], target, cache, jobs=1)
    assert sf.info(edited).frames == 100
    edited.unlink()  # the user's file gone: the export writes its own again
    assert export(dataset, "evaluate", [C("wav")], target, cache, jobs=1).written == 1
    assert condition_folder(C("aac@128>opus@24+loss5")) == "aac_128_to_opus_24+loss5"
    assert not set(condition_folder(C("aac@128>opus@24"))) & set('<>:"/\\|?*')


def test_export_and_reproduce_refuse_a_regular_file_as_their_folder(tmp_path, capsys):
    (tmp_path / "file").write_text("mine")
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert main(["export", "--dataset", DATA, "--conditions", "wav", "--to", str(tmp_path / "file"), *cache]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert main(["reproduce", "peters", "--data", DATA, "--preset", "small", "--out", str(tmp_path / "file"),
                 *cache]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "file").read_text() == "mine"


def test_reproduce_neither_adopts_nor_overwrites_foreign_content(tmp_path, capsys):
    from codecbench.zoo import Zoo, packaged_model_dir

    cache = ["--cache-dir", str(tmp_path / "cache")]
    foreign = tmp_path / "foreign"
    (foreign / "report").mkdir(parents=True)
    (foreign / "report" / "report.md").write_text("my notes")
    (foreign / "zoo").mkdir()
    demo = Zoo(packaged_model_dir())
    for suffix in (".keras", ".json"):  # another model under the name base
        shutil.copy(demo.root / f"finetuned_seg7{suffix}", foreign / "zoo" / f"base{suffix}")
    argv = ["reproduce", "peters", "--data", DATA, "--preset", "small", "--jobs", "1", *cache]
    assert main([*argv, "--out", str(foreign)]) == 2
    err = capsys.readouterr().err
    assert "holds files this reproduction did not write (report, zoo)" in err and "Give an empty or new folder" in err
    assert (foreign / "report" / "report.md").read_text() == "my notes"
    # a work folder of its own whose base was replaced by another model: refused, not benchmarked as the base
    from codecbench.reproduce import ReproduceOptions, _check_recipe

    work = tmp_path / "work"
    _check_recipe(work, ReproduceOptions("peters", DATA, work, preset="small").recipe(None))
    shutil.copytree(foreign / "zoo", work / "zoo")
    assert main([*argv, "--out", str(work)]) == 2
    assert "not imported by this reproduction from the packaged demo base" in capsys.readouterr().err
    # a model file changed after it was written: named, with what to do (not --force, which means the disk here)
    (work / "zoo" / "base.keras").write_bytes(b"changed")
    assert main([*argv, "--out", str(work)]) == 2
    err = capsys.readouterr().err
    assert "changed after this reproduction wrote it" in err and "--force" not in err


def test_two_processes_on_one_work_folder(tmp_path):
    from codecbench.core.fsutil import claim_folder
    from codecbench.errors import FolderBusy

    with claim_folder(tmp_path / "w", "reproduce"):
        pid = os.fork()
        if pid == 0:  # another process: refused at once, naming the holder
            try:
                with claim_folder(tmp_path / "w", "export"):
                    os._exit(3)
            except FolderBusy as exc:
                os._exit(0 if f"pid {os.getppid()}: reproduce" in str(exc) else 4)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    with claim_folder(tmp_path / "w", "export"):  # released with its holder
        assert json.dumps("ok")
