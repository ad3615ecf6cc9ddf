"""The HTML report and the leaderboard: built from real results, opened in Debian's headless Chromium with the
network blocked, and clicked through (sort, filter, toggle a series, hover, open a model's detail).

The browser tests skip, naming what is missing, when Chromium, its driver or selenium is not installed; `.ci/run`
installs Chromium and chromium-driver best-effort, and selenium comes with the test extra.
"""
import json
import os
import shutil
from pathlib import Path

import pytest

from codecbench.codecs import parse_condition as C
from codecbench.report import render
from codecbench.report.html import render_leaderboard
from codecbench.results.files import leaderboard_documents, record_result, record_run, write_item, write_run

from . import optional
from .evaluators import split_evaluator

EXAMPLE = Path(__file__).resolve().parents[1] / "reports" / "example" / "results.json"


def _browser_or_skip():
    try:
        from selenium import webdriver
    except ImportError:
        optional.missing("browser", "selenium is not installed (pip install 'codecbench[test]'): no browser test")
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        optional.missing("browser", "no Chromium and chromedriver on PATH (Debian: apt-get install chromium "
                         "chromium-driver)")
    return webdriver, browser, driver


@pytest.fixture(scope="module")
def example_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("html")
    _, written = render(EXAMPLE, out, ["csv", "html"])
    return out / "html" / "index.html"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    webdriver, binary, driver_path = _browser_or_skip()
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1000",
                 # no name resolves and no proxy answers: a request that tried to leave would fail, and show below
                 "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*", "ws://*", "wss://*"]})
    yield driver
    driver.quit()


def _requests(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def _open(driver, page: Path):
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("performance"), driver.get_log("browser")  # forget what earlier pages logged
    driver.get(page.as_uri())
    WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))


def test_the_page_is_self_contained_and_small(example_report):
    html = example_report.read_text()
    assert "<script src" not in html and "<link" not in html and "http://" not in html.split("<script")[0]
    assert "https://" not in html and "@import" not in html
    assert example_report.stat().st_size < 600_000  # 16 models x 8 conditions with per-clip confusion data
    assert sorted(p.name for p in (example_report.parent / "csv").iterdir())[:2] == ["accuracy_long.csv",
                                                                                     "codec_facts.csv"]


def test_renders_offline_with_no_console_error_and_no_request_leaving_the_folder(browser, example_report, tmp_path):
    _open(browser, example_report)
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe
    folder = example_report.parent.as_uri()
    leaving = [u for u in _requests(browser) if not (u.startswith(folder) or u.startswith("data:"))]
    assert not leaving, leaving
    browser.save_screenshot(str(tmp_path / "leaderboard.png"))


def test_the_leaderboard_sorts_and_filters(browser, example_report):
    from selenium.webdriver.common.by import By

    _open(browser, example_report)

    def column(key):
        index = [th.get_attribute("data-key") for th in browser.find_elements(By.CSS_SELECTOR, "#leaderboard-0 th")]
        rows = browser.find_elements(By.CSS_SELECTOR, "#leaderboard-0 tbody tr:not([hidden])")
        return [r.find_elements(By.TAG_NAME, "td")[index.index(key)].get_attribute("data-value") for r in rows]

    browser.find_element(By.CSS_SELECTOR, '#leaderboard-0 th[data-key="cat:cat2"]').click()
    values = [float(v) for v in column("cat:cat2")]
    assert values == sorted(values, reverse=True) and len(values) == 16
    browser.find_element(By.CSS_SELECTOR, '#leaderboard-0 th[data-key="cat:cat2"]').click()
    assert [float(v) for v in column("cat:cat2")] == sorted(values)
    browser.find_element(By.CSS_SELECTOR, '#leaderboard-0 th[data-key="model"]').click()
    names = column("model")
    assert names == sorted(names, reverse=True)
    search = browser.find_element(By.CSS_SELECTOR, "#group-0 input[type=search]")
    search.send_keys("seg")
    assert set(column("model")) == {f"finetuned_seg{k}" for k in range(1, 11)}
    search.clear()
    search.send_keys("no such model")
    assert column("model") == []


def test_a_figure_toggles_a_model_and_hover_shows_the_numbers(browser, example_report, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    _open(browser, example_report)
    figure = browser.find_element(By.CSS_SELECTOR, "#sweep-0-aac")  # the example sweeps AAC at 32/48/64 kbps
    series = figure.find_element(By.CSS_SELECTOR, 'g[data-series="base"]')
    assert "hidden" not in (series.get_attribute("class") or "")
    legend = figure.find_element(By.XPATH, "..").find_element(By.CSS_SELECTOR, 'button[data-series="base"]')
    legend.click()
    assert "hidden" in series.get_attribute("class") and legend.get_attribute("aria-pressed") == "false"
    legend.click()
    point = series.find_element(By.CSS_SELECTOR, ".point")
    ActionChains(browser).move_to_element(point).perform()
    tip = browser.find_element(By.ID, "tooltip")
    assert tip.is_displayed() and "base on aac@" in tip.text and "n = " in tip.text and "accuracy" in tip.text
    # the models to show are chosen: adding one draws its series
    browser.find_element(By.CSS_SELECTOR, '#group-0 input[type=checkbox][data-model="finetuned_seg7"]').click()
    assert browser.find_elements(By.CSS_SELECTOR, '#sweep-0-aac g[data-series="finetuned_seg7"]')
    figure2 = browser.find_element(By.ID, "figure2-0")
    browser.execute_script("arguments[0].scrollIntoView()", figure2)
    browser.save_screenshot(str(tmp_path / "figures.png"))


def test_a_models_detail_shows_paired_comparison_and_confusion(browser, example_report, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _open(browser, example_report)
    browser.find_element(By.CSS_SELECTOR, 'button.model[data-model="finetuned_full@e10"]').click()
    detail = browser.find_element(By.ID, "detail")
    assert detail.is_displayed() and "Model finetuned_full@e10" in detail.text
    rows = detail.find_elements(By.CSS_SELECTOR, "table.paired tbody tr")
    mp3 = next(r for r in rows if r.text.startswith("mp3@32"))
    assert "sig-up" in mp3.find_elements(By.TAG_NAME, "td")[3].get_attribute("class")  # 0.153 -> 0.477 vs base
    Select(detail.find_element(By.CSS_SELECTOR, "select.reference")).select_by_value("finetuned_full@e1")
    assert "finetuned_full@e1" in detail.find_element(By.CSS_SELECTOR, "table.paired thead").text
    Select(detail.find_element(By.CSS_SELECTOR, "select.condition")).select_by_value("mp3@32")
    confusion = detail.find_elements(By.CSS_SELECTOR, "table.confusion tbody tr")
    assert len(confusion) == 10
    total = sum(int(td.text) for r in confusion for td in r.find_elements(By.TAG_NAME, "td")[1:])
    assert total == next(r["n"] for r in json.loads(EXAMPLE.read_text())["results"]
                         if r["model"] == "finetuned_full@e10" and r["condition"] == "mp3@32")
    browser.save_screenshot(str(tmp_path / "detail.png"))
    if os.environ.get("CODECBENCH_SCREENSHOTS"):  # the README's picture: CODECBENCH_SCREENSHOTS=docs/images
        _open(browser, example_report)
        browser.save_screenshot(str(Path(os.environ["CODECBENCH_SCREENSHOTS"]) / "report.png"))


def _chart_facts(driver, svg_id: str) -> dict:
    """A chart's y ticks (values and pixel rows), its plot area's rows, and its zero line's row, read from the SVG."""
    return driver.execute_script("""
        const svg = document.getElementById(arguments[0]);
        const y = (node, a) => Number(node.getAttribute(a));
        const ticks = [...svg.querySelectorAll("text.ytick")].map((t) => [Number(t.dataset.value), y(t, "y") - 4]);
        const axis = [...svg.querySelectorAll("line.axis")].find((l) => y(l, "x1") === y(l, "x2")
                                                                    && y(l, "y2") - y(l, "y1") > 20);
        const zero = svg.querySelector("line.zero");
        return {ticks, top: Number(axis.getAttribute("y1")), bottom: Number(axis.getAttribute("y2")),
                zero: zero ? Number(zero.getAttribute("y1")) : null, labels: ticks.length,
                xticks: [...svg.querySelectorAll("text.xtick")].map((t) => t.textContent)};""", svg_id)


@pytest.mark.parametrize("width", [1400, 390])
def test_the_page_fits_the_screen_and_its_charts_have_round_ticks_and_a_zero_line(browser, width, tmp_path):
    """Desktop and phone: no sideways page scroll (wide tables scroll in their own box); every chart's ticks are
    round numbers inside its range; Figure 2, whose changes can be negative, has a zero line at 0."""
    out = tmp_path / "html"
    render(EXAMPLE, tmp_path, ["html"], paper="peters")
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600})
    try:
        _open(browser, out / "index.html")
        assert browser.execute_script("return document.documentElement.scrollWidth") <= width
        charts = browser.execute_script("return [...document.querySelectorAll('svg[id]')].map((s) => s.id)")
        assert "figure2-0" in charts and "sweep-0-aac" in charts
        for chart in charts:
            facts = _chart_facts(browser, chart)
            assert 3 <= facts["labels"] <= 8, (chart, facts)
            values = [v for v, _ in facts["ticks"]]
            steps = {round(b - a, 9) for a, b in zip(values, values[1:])}
            assert len(steps) == 1, (chart, values)  # evenly spaced
            step = steps.pop()
            assert any(abs(step / 10 ** e - m) < 1e-9 for e in range(-3, 1) for m in (1, 2, 2.5, 5)), (chart, step)
            assert all(facts["top"] - 0.5 <= y <= facts["bottom"] + 0.5 for _, y in facts["ticks"]), (chart, facts)
            assert len(set(facts["xticks"])) == len(facts["xticks"]) > 0  # no label printed twice
        figure2 = _chart_facts(browser, "figure2-0")
        assert figure2["ticks"][0][0] < 0 < figure2["ticks"][-1][0] and figure2["zero"] is not None
        (zero_row,) = [y for v, y in figure2["ticks"] if abs(v) < 1e-12]
        assert abs(figure2["zero"] - zero_row) < 0.5
        sweep = _chart_facts(browser, "sweep-0-aac")  # accuracies 0.78-0.94: the axis is fitted, not 0-1
        assert sweep["ticks"][0][0] >= 0.5 and sweep["zero"] is None
        # the paper comparison is on the page (--paper peters on other data: the findings)
        assert "Paper vs this run" in browser.find_element("id", "group-0").text
        # the first screen of each (CODECBENCH_SCREENSHOTS=docs/images writes the docs' pictures)
        browser.save_screenshot(str(Path(os.environ.get("CODECBENCH_SCREENSHOTS") or tmp_path) / f"report-{width}.png"))
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def _history_run(tiny, results: Path, run_id: str, dataset, started: str, pairs) -> None:
    ev = split_evaluator(dataset, "evaluate", tiny["matrix"], tiny["zoo"], tiny["cache"], jobs=1, log=lambda m: None)
    meta = {"run_id": run_id, "started": started,
            "dataset": {"name": dataset.name, "split": "evaluate", "fingerprint": dataset.fingerprint("evaluate"),
                        "recipe": dataset.recipe, "clip_digests": dataset.clip_digests("evaluate"),
                        "class_names": dataset.class_names},
            "matrix": {"name": "tiny", "fingerprint": tiny["matrix"].fingerprint()},
            # as a session records them: the facts of this run's own models only
            "models": {m: tiny["zoo"].sha256(m) for m, _ in pairs},
            "model_facts": {m: {"strategy": tiny["zoo"].metadata(m).get("strategy"), "recorded_in": run_id}
                            for m, _ in pairs}}
    record_run(results / "history.sqlite", run_id, meta)
    run = results / "runs" / run_id
    for model, cond in pairs:
        record = {**ev.evaluate(tiny["zoo"].entry(model), C(cond)).as_record(), "threshold": None, "outcome": "passed"}
        write_item(run, record)
        record_result(results / "history.sqlite", run_id, record, started)
    write_run(results, run, meta)


def test_the_leaderboard_of_many_runs_keeps_datasets_apart(tiny, tmp_path):
    from codecbench.datasets import load_dataset

    other = load_dataset("synthetic:train=2,evaluate=2,duration=1,seed=6", cache_dir=tiny["cache"].root)
    results = tmp_path / "results"
    _history_run(tiny, results, "r1", tiny["dataset"], "2026-01-01T00:00:00", [("base", "wav"), ("base", "mp3@32")])
    _history_run(tiny, results, "r2", other, "2026-01-02T00:00:00", [("base", "wav"), ("finetuned_seg9", "wav")])
    _history_run(tiny, results, "r3", tiny["dataset"], "2026-01-03T00:00:00", [("finetuned_seg9", "wav")])
    documents = leaderboard_documents([results])
    assert len(documents) == 2
    by_data = {d["meta"]["dataset"]["fingerprint"]: d for d in documents}
    first = by_data[tiny["dataset"].fingerprint("evaluate")]
    assert {(r["model"], r["condition"], r["run_id"]) for r in first["results"]} == {
        ("base", "wav", "r1"), ("base", "mp3@32", "r1"), ("finetuned_seg9", "wav", "r3")}
    second = by_data[other.fingerprint("evaluate")]
    assert {r["run_id"] for r in second["results"]} == {"r2"}
    page = render_leaderboard(documents, tmp_path / "board")
    data = json.loads(page.read_text().split('<script type="application/json" id="data">')[1].split("</script>")[0])
    assert len(data["groups"]) == 2
    assert [sorted(m["name"] for m in g["models"]) for g in data["groups"]] == [["base", "finetuned_seg9"]] * 2
    assert {g["dataset"]["fingerprint"] for g in data["groups"]} == set(by_data)


def test_leaderboard_command_from_folders(tiny, tmp_path, capsys):
    from codecbench.cli import main

    results = tmp_path / "results"
    _history_run(tiny, results, "r1", tiny["dataset"], "2026-01-01T00:00:00", [("base", "wav")])
    assert main(["leaderboard", str(results), "--out", str(tmp_path / "board")]) == 0
    assert "open the leaderboard: file://" in capsys.readouterr().err
    assert (tmp_path / "board" / "index.html").is_file()
    assert main(["leaderboard", str(tmp_path / "nothing")]) == 2


def test_model_facts_survive_incremental_runs_in_the_report_and_the_leaderboard(tiny, tmp_path):
    """The docs' incremental workflow: every model, then one model again; each model keeps the facts of the run that
    scored it (the newest run's metadata alone knows one model)."""
    from codecbench.results.files import latest_document

    results = tmp_path / "results"
    _history_run(tiny, results, "r1", tiny["dataset"], "2026-01-01T00:00:00",
                 [("base", "wav"), ("finetuned_seg9", "wav")])
    _history_run(tiny, results, "r2", tiny["dataset"], "2026-01-02T00:00:00", [("finetuned_seg9", "mp3@32")])
    doc = latest_document(results / "history.sqlite")
    assert doc["meta"]["model_facts"]["base"]["recorded_in"] == "r1"
    assert doc["meta"]["model_facts"]["finetuned_seg9"]["recorded_in"] == "r2"
    assert set(doc["meta"]["models"]) == {"base", "finetuned_seg9"}
    (board,) = leaderboard_documents([results])
    assert {m: f["recorded_in"] for m, f in board["meta"]["model_facts"].items()} == {
        "base": "r1", "finetuned_seg9": "r2"}
    two_files = []
    for run in ("r1", "r2"):  # a leaderboard of two results files, one model each
        two_files.append(results / "runs" / run / "results.json")
    merged = leaderboard_documents(two_files)
    assert {m: f["recorded_in"] for m, f in merged[0]["meta"]["model_facts"].items()} == {
        "base": "r1", "finetuned_seg9": "r2"}
    page = render_leaderboard([board], tmp_path / "board")
    data = json.loads(page.read_text().split('<script type="application/json" id="data">')[1].split("</script>")[0])
    models = {m["name"]: m for m in data["groups"][0]["models"]}
    assert all(models[name]["sha256"] and models[name]["facts"]["recorded_in"] for name in ("base", "finetuned_seg9"))


@pytest.mark.parametrize("width", [1400, 390])
def test_the_leaderboard_is_ranked_with_the_model_column_sticky_and_key_columns_in_view(browser, example_report,
                                                                                        width):
    """Like RobustBench's board: ranked by the headline (rank column, default sort), the model column stays in view
    while the table scrolls, and at 1,400 px the key columns (uncoded, coded accuracy, log-loss, worst) are visible
    without scrolling; facts identical for every model are folded into one line."""
    from selenium.webdriver.common.by import By

    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600})
    try:
        _open(browser, example_report)
        keys = [th.get_attribute("data-key") for th in browser.find_elements(By.CSS_SELECTOR, "#leaderboard-0 th")]
        assert keys[:6] == ["rank", "model", "wav", "coded", "log_loss", "worst"]
        assert "kind" not in keys and "frontend" not in keys  # keras and hu2020 for every packaged model
        assert "kind keras" in browser.find_element(By.ID, "same-0").text
        rows = browser.find_elements(By.CSS_SELECTOR, "#leaderboard-0 tbody tr")
        ranks = [int(r.find_elements(By.TAG_NAME, "td")[0].get_attribute("data-value")) for r in rows]
        coded = [float(r.find_elements(By.TAG_NAME, "td")[3].get_attribute("data-value")) for r in rows]
        assert ranks == list(range(1, 17)) and coded == sorted(coded, reverse=True)
        assert browser.find_element(By.CSS_SELECTOR, '#leaderboard-0 th[data-key="rank"]').get_attribute(
            "aria-sort") == "ascending"
        model_cell = rows[0].find_elements(By.TAG_NAME, "td")[1]
        assert browser.execute_script("return getComputedStyle(arguments[0]).position", model_cell) == "sticky"
        box = browser.find_element(By.CSS_SELECTOR, "#group-0 .scroll")
        before = model_cell.rect["x"]
        browser.execute_script("arguments[0].scrollLeft = 400", box)
        assert browser.execute_script("return arguments[0].scrollLeft", box) > 0  # the table is wider than its box
        assert abs(model_cell.rect["x"] - before) < 1
        browser.execute_script("arguments[0].scrollLeft = 0", box)
        if width == 1400:
            right = box.rect["x"] + box.rect["width"]
            for key in ("wav", "coded", "log_loss", "worst"):
                th = browser.find_element(By.CSS_SELECTOR, f'#leaderboard-0 th[data-key="{key}"]')
                assert th.rect["x"] + th.rect["width"] <= right + 1, key
        table = browser.find_element(By.ID, "conditions-0")  # every metric per condition, every matrix
        assert [r.get_attribute("data-model") for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")][:3] == \
            [r.get_attribute("data-model") for r in rows[:3]]
        if width == 1400:  # log-loss per condition: lower is better, so the column's smallest is the bold one
            from selenium.webdriver.support.ui import Select

            Select(browser.find_element(By.ID, "metric-0")).select_by_visible_text("log-loss")
            heads = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
            column = heads.index("mp3@32")
            cells = [r.find_elements(By.TAG_NAME, "td")[column] for r in table.find_elements(By.CSS_SELECTOR,
                                                                                             "tbody tr")]
            values = [float(c.get_attribute("data-value")) for c in cells]
            assert len(values) == 16 and all(v > 0 for v in values)
            bold = [float(c.get_attribute("data-value")) for c in cells if "best" in (c.get_attribute("class") or "")]
            assert bold == [min(values)]
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_significance_and_earlier_run_marks_are_text_and_survive_an_incremental_run(browser, tmp_path):
    """A cell from an earlier run that is also a significant change shows both marks, as text (both were CSS
    ::after rules on one element, so the second hid the first)."""
    from selenium.webdriver.common.by import By

    from codecbench.report.html import render_html
    from codecbench.report.table import ResultTable

    n = 60
    labels = [i % 10 for i in range(n)]

    def row(model, condition, wrong, run_id):
        predictions = [(y + 1) % 10 if i < wrong else y for i, y in enumerate(labels)]
        correct = n - wrong
        return {"model": model, "condition": condition, "n": n, "correct": correct, "accuracy": correct / n,
                "ci_low": 0.0, "ci_high": 1.0, "clips": [f"c{i}.wav" for i in range(n)], "labels": labels,
                "predictions": predictions, "run_id": run_id}

    # an incremental run: r2 re-scored base on wav only; finetuned_full@e10's cells (much better on mp3@32: a
    # significant change against base) come from the earlier run r1
    doc = {"meta": {"run_id": "r2", "composed_from": ["r1", "r2"],
                    "matrix": {"fingerprint": {"categories": {"cat1": ["wav"], "cat2": ["mp3@32"]}}}},
           "results": [row("base", "wav", 5, "r2"), row("base", "mp3@32", 40, "r1"),
                       row("finetuned_full@e10", "wav", 5, "r1"), row("finetuned_full@e10", "mp3@32", 5, "r1")]}
    page = render_html(ResultTable(doc), tmp_path / "html")
    _open(browser, page)
    cells = browser.find_elements(By.CSS_SELECTOR, "#table2-0 td")
    both = [c for c in cells if "sig-up" in c.get_attribute("class") and "older" in c.get_attribute("class")]
    assert len(both) == 1  # finetuned_full@e10 on mp3@32
    assert [m.text.strip() for m in both[0].find_elements(By.CSS_SELECTOR, ".mark")] == ["*", "†"]
    assert "*" in both[0].text and "†" in both[0].text  # real text: copied with the number, read by a screen reader
    assert browser.execute_script(
        "return [...document.querySelectorAll('td')].every(td => ['none', 'normal'].includes("
        "getComputedStyle(td, '::after').content))")


def test_hostile_strings_in_every_field_stay_text(browser, tmp_path):
    """A dataset folder or name, a split or class names holding markup ("<!--<script>" blanked the page: the JSON
    inside <script> must escape <, > and &) reach the page as text, and the page still renders every row."""
    from selenium.webdriver.common.by import By

    from codecbench.report.html import render_html
    from codecbench.report.table import ResultTable

    hostile = "<!--<script>window.__pwned=1</script>&amp;<img src=x onerror=window.__pwned=2>"
    n = 20
    labels = [i % 2 for i in range(n)]

    def row(model, condition):
        return {"model": model, "condition": condition, "n": n, "correct": n, "accuracy": 1.0, "ci_low": 0.8,
                "ci_high": 1.0, "clips": [f"{hostile}{i}.wav" for i in range(n)], "labels": labels,
                "predictions": labels}

    doc = {"meta": {"run_id": hostile, "started": hostile, "git_commit": hostile,
                    "dataset": {"name": hostile, "split": hostile, "root": hostile, "fingerprint": hostile,
                                "class_names": [hostile, "b"]},
                    "matrix": {"name": hostile, "fingerprint": {"categories": {"cat1": ["wav", "mp3@32"]}}},
                    "model_facts": {"base": {"kind": hostile, "frontend": hostile, "strategy": hostile}}},
           "results": [row("base", "wav"), row("base", "mp3@32"), row("finetuned_seg7", "wav"),
                       row("finetuned_seg7", "mp3@32")]}
    page = render_html(ResultTable(doc), tmp_path / "html")
    assert "<!--<script>" not in page.read_text().split('id="data">')[1].split("</script>")[0]
    _open(browser, page)
    assert browser.execute_script("return window.__pwned === undefined")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#leaderboard-0 tbody tr")) == 2
    assert hostile in browser.find_element(By.CSS_SELECTOR, "#group-0 h2").text
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe
