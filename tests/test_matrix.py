import pytest

from codecbench.codecs.matrix import MatrixError, load_matrix


def test_packaged_matrix_is_the_papers_table_1():
    m = load_matrix()
    assert [c.name for c in m.finetune] == ["aac@32", "he-aac@16", "he-aac@32", "mp3@64"]
    assert m.include_original
    assert {k: [c.name for c in v] for k, v in m.categories.items()} == {
        "cat1": ["wav", "aac@32", "mp3@64"], "cat2": ["mp3@32", "aac@48", "aac@64"], "cat3": ["opus@64", "sbc@64"]}
    assert m.category_of("sbc@64") == "cat3"
    assert [c.name for c in m.select(categories=["cat2"])] == ["mp3@32", "aac@48", "aac@64"]


GOOD = """
[finetune]
conditions = ["aac@32"]
[categories.a]
conditions = ["wav", "mp3@32"]
"""


@pytest.mark.parametrize("text, fragment", [
    (GOOD.replace('"mp3@32"', '"flac@32"'), r"categories.a.conditions\[1\]: .*unknown codec 'flac'"),
    (GOOD.replace('"mp3@32"', '"mp3@500"'), r"categories.a.conditions\[1\]: .*32-320 kbps"),
    (GOOD.replace('"mp3@32"', '"wav"'), r"categories.a.conditions\[1\]: duplicate condition 'wav'"),
    (GOOD.replace('["wav", "mp3@32"]', "[]"), "categories.a.conditions is empty"),
    (GOOD + '[categories.b]\nconditions = ["mp3@32"]\n', "categories.b.conditions: duplicate condition 'mp3@32'"),
    (GOOD.replace("[finetune]", "[finetune"), "malformed TOML"),
    ("[matrix]\nname='x'\n", "at least one category"),
])
def test_bad_matrix_errors_name_file_and_key(tmp_path, text, fragment):
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(MatrixError, match=fragment) as info:
        load_matrix(path)
    assert str(path) in str(info.value)


def test_user_matrix_loads(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(GOOD)
    m = load_matrix(path)
    assert m.name == "mine" and [c.name for c in m.validation] == ["wav", "mp3@32"]


def test_missing_matrix_file(tmp_path):
    with pytest.raises(MatrixError, match="not found"):
        load_matrix(tmp_path / "nope.toml")


def test_unknown_category_selection():
    with pytest.raises(MatrixError, match="cat9.*cat1, cat2, cat3"):
        load_matrix().select(categories=["cat9"])
