"""A model name maps to exactly one set of files, and the file is the one its sidecar describes."""
import shutil

import pytest

from codecbench.cli import main
from codecbench.datasets import SCENES
from codecbench.models.kinds import ModelError
from codecbench.zoo import Zoo, ZooError
from tests.test_kinds import tiny_onnx


@pytest.fixture
def folder(tiny, tmp_path):
    root = tmp_path / "zoo"
    root.mkdir()
    for name in ("base", "finetuned_seg9"):
        for suffix in (".keras", ".json"):
            shutil.copy(tiny["zoo"].root / f"{name}{suffix}", root / f"{name}{suffix}")
    return root


def test_replacing_a_keras_model_with_onnx_removes_the_keras_file(folder, tmp_path):
    onnx_file = tiny_onnx(tmp_path / "tiny.onnx")
    assert main(["import-model", str(onnx_file), "--name", "base", "--classes", ",".join(SCENES),
                 "--outputs", "logits", "--model-dir", str(folder), "--force"]) == 0
    assert not (folder / "base.keras").exists() and (folder / "base.onnx").is_file()
    zoo = Zoo(folder)
    assert zoo.kind("base") == "onnx" and zoo.scoring("base").kind == "onnx"
    assert zoo.metadata("base")["sha256"] == zoo.sha256("base")


def test_replacing_with_a_keras_model_removes_the_onnx_file(folder, tiny, tmp_path):
    onnx_file = tiny_onnx(tmp_path / "tiny.onnx")
    assert main(["import-model", str(onnx_file), "--name", "net", "--classes", ",".join(SCENES),
                 "--outputs", "logits", "--model-dir", str(folder)]) == 0
    assert main(["import-model", str(folder / "base.keras"), "--name", "net", "--model-dir", str(folder),
                 "--force"]) == 0
    assert (folder / "net.keras").is_file() and not (folder / "net.onnx").exists()
    assert Zoo(folder).kind("net") == "keras"


def test_a_leftover_of_another_kind_is_an_error_at_load(folder, tmp_path):
    tiny_onnx(folder / "base.onnx")
    with pytest.raises(ZooError, match=r"model 'base' has files of several kinds: .*base\.keras, .*base\.onnx"):
        Zoo(folder).scoring("base")


def test_a_model_file_replaced_under_its_sidecar_is_refused(folder):
    shutil.copy(folder / "finetuned_seg9.keras", folder / "base.keras")
    with pytest.raises(ModelError, match=r"base\.keras: model 'base' is not the file its sidecar describes"):
        Zoo(folder).scoring("base")
    with pytest.raises(ModelError, match="re-import it"):
        Zoo(folder).load("base")
