"""The HTML report in a real headless Chromium (Debian's chromium + chromium-driver).

One page of 1,000 samples with hostile model text is loaded once; the tests read the
browser's console and network logs and drive the page like a reader would. A second
page holds runs shaped like the demo's (captioners named by absolute local paths,
option log-likelihood scoring under the expected estimator), and a phone-sized
browser (390 px) opens both.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from prism_eval.report import write_report
from prism_eval.report.screenshot import chromium, chromium_available, emulate_phone
from prism_eval.runner.naming import display_names

from .test_fixture import HOSTILE, build_runs

pytestmark = [pytest.mark.needs_browser, pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium and chromedriver "
                                                                  "(make setup-browser)")]

ARTIFACTS = Path(__file__).parents[1] / "artifacts" / "report"  # git-ignored: screenshots to look at

# Runs before any page script: counts alert/confirm/prompt calls and records any element inside <main>
# that model text could have smuggled in (scripts, frames, text areas, images other than our thumbnails).
TRAP = """
window.__alerts = 0;
['alert', 'confirm', 'prompt'].forEach(function (n) { window[n] = function () { window.__alerts += 1; }; });
window.__injected = [];
var RISKY = 'script, img, iframe, textarea, object, embed, svg image, a[href]';
new MutationObserver(function (ms) {
  ms.forEach(function (m) { m.addedNodes.forEach(function (x) {
    if (x.nodeType !== 1) { return; }
    var found = [x].concat(Array.prototype.slice.call(x.querySelectorAll(RISKY)));
    found.forEach(function (e) {
      if (!e.matches(RISKY) || !e.closest('main')) { return; }
      if (e.tagName === 'IMG' && e.classList.contains('thumb') && e.src.startsWith('data:image/jpeg;base64,')) { return; }
      if (e.tagName === 'A' && e.classList.contains('permalink') && e.getAttribute('href').startsWith('#samples?')) { return; }
      window.__injected.push(e.outerHTML.slice(0, 200));
    });
  }); });
}).observe(document, {childList: true, subtree: true});
"""


def _click(driver, element) -> None:
    """Scroll the element to the middle (clear of the sticky section bar), then click it."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", element)
    element.click()


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("browser")
    build_runs(root / "runs")
    return write_report([root / "runs"], root / "leaderboard.html"), root / "runs"


@pytest.fixture(scope="module")
def page(report):
    path, _ = report
    with chromium(1280, 1100, performance_log=True) as driver:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": TRAP})
        driver.get_log("performance")  # drop the browser's own start-up page loads
        driver.get(path.resolve().as_uri())
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#sb-list article.sample"))
        yield driver


def _rows(driver) -> list[str]:
    return [tr.get_attribute("data-label") for tr in driver.find_elements(By.CSS_SELECTOR, "table.board tbody.runs tr")]


def _expected_results(runs: Path) -> dict[str, dict]:
    """Each run's results.json by the name the report shows (the captioner's short name)."""
    raw = [json.loads(p.read_text()) for p in runs.glob("*/results.json")]
    names = display_names([r["captioner"] for r in raw])
    return {names[r["captioner"]]: r for r in raw}


def test_loads_without_console_errors_or_network_requests(page, report):
    logs = page.get_log("browser")
    assert [x for x in logs if x["level"] in ("SEVERE", "WARNING")] == []
    url = report[0].resolve().as_uri()
    requested = []
    for entry in page.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            requested.append(msg["params"]["request"]["url"])
    assert url in requested
    assert [u for u in requested if u != url and not u.startswith("data:")] == []
    resources = page.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert [u for u in resources if not u.startswith("data:")] == []
    assert page.execute_script("return window.__alerts") == 0


def test_leaderboard_rows_are_the_runs_sorted_by_average(page, report):
    results = _expected_results(report[1])
    expected = sorted(results, key=lambda c: -results[c]["average"])
    assert _rows(page) == expected
    reference = [tr.get_attribute("data-label") for tr in page.find_elements(By.CSS_SELECTOR, "tbody.ref tr.reference")]
    assert reference[-1] == "CapRL-3B" and len(reference) == 6
    assert all("reported" in tr.text for tr in page.find_elements(By.CSS_SELECTOR, "tbody.ref tr.reference"))
    blind = page.find_element(By.CSS_SELECTOR, 'tbody.runs tr[data-label="none"]')
    assert "blind baseline" in blind.text


def _sort_button(driver, header: str):
    return driver.find_element(By.XPATH, "//table[contains(@class,'board')]//thead//button"
                                         f"[span[@class='h' and normalize-space()='{header}']]")


def test_clicking_a_column_sorts_the_rows(page, report):
    results = _expected_results(report[1])
    button = _sort_button(page, "ChartQA")
    _click(page, button)
    by_chart = sorted(results, key=lambda c: -results[c]["benchmarks"]["ChartQA"]["score"])
    assert _rows(page) == by_chart
    assert button.find_element(By.XPATH, "..").get_attribute("aria-sort") == "descending"
    _click(page, button)
    assert _rows(page) == by_chart[::-1]
    _click(page, _sort_button(page, "Captioner"))
    assert _rows(page) == sorted(results)
    _click(page, _sort_button(page, "Average"))
    assert _rows(page) == sorted(results, key=lambda c: -results[c]["average"])


def _count_text(driver) -> str:
    return driver.find_element(By.ID, "sb-count").text


def test_wrong_answers_filter_shows_only_wrong_answers(page, report):
    runs = report[1]
    samples = [json.loads(line) for p in runs.glob("*/samples.jsonl")
               for line in p.read_text(encoding="utf-8").split("\n") if line]
    questions = {(s["benchmark"], s["question_id"]) for s in samples}
    with_wrong = {(s["benchmark"], s["question_id"]) for s in samples if not s["correct"]}
    images = {(s["benchmark"], s["image"]) for s in samples if (s["benchmark"], s["question_id"]) in with_wrong}
    assert _count_text(page).endswith(f" images · {len(questions)} questions")
    _click(page, page.find_element(By.ID, "sb-wrong"))
    assert _count_text(page).endswith(f"of {len(images)} images · {len(with_wrong)} questions")
    verdicts = [a.get_attribute("data-correct") for a in page.find_elements(By.CSS_SELECTOR, "#sb-list .answer")]
    assert verdicts and set(verdicts) == {"false"}
    _click(page, page.find_element(By.ID, "sb-wrong"))
    verdicts = {a.get_attribute("data-correct") for a in page.find_elements(By.CSS_SELECTOR, "#sb-list .answer")}
    assert verdicts == {"true", "false"}


def test_benchmark_captioner_filters_and_side_by_side_compare(page):
    Select(page.find_element(By.ID, "sb-bench")).select_by_visible_text("ChartQA")
    arts = page.find_elements(By.CSS_SELECTOR, "#sb-list article.sample")
    assert arts and {a.get_attribute("data-bench") for a in arts} == {"ChartQA"}
    Select(page.find_element(By.ID, "sb-run")).select_by_visible_text("example/captioner-large")
    sides = page.find_elements(By.CSS_SELECTOR, "#sb-list .side .run-label")
    assert sides and {s.text for s in sides} == {"example/captioner-large"}
    Select(page.find_element(By.ID, "sb-compare")).select_by_visible_text("none (blind baseline)")
    arts = page.find_elements(By.CSS_SELECTOR, "#sb-list article.sample")
    assert arts
    for a in arts[:5]:
        labels = [s.text for s in a.find_elements(By.CSS_SELECTOR, ".side .run-label")]
        assert labels == ["example/captioner-large", "none"]
        assert len(a.find_elements(By.CSS_SELECTOR, "img.thumb")) == 1  # one image, two captioners
    assert _count_text(page).endswith("questions compared")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.find_element(By.ID, "samples").screenshot(str(ARTIFACTS / "report_compare.png"))
    for sel in ("sb-compare", "sb-run", "sb-bench"):
        Select(page.find_element(By.ID, sel)).select_by_index(0)


def test_hostile_model_text_shows_as_text_and_runs_nothing(page):
    box = page.find_element(By.ID, "sb-search")
    box.clear()
    box.send_keys("alert(1)")
    WebDriverWait(page, 10).until(lambda d: "alert(1)" in d.find_element(By.ID, "sb-list").text)
    shown = page.find_element(By.ID, "sb-list").text
    seen = [h for h in HOSTILE if h in shown]
    assert len(seen) == 3, seen  # all three strings rendered literally
    box.clear()
    box.send_keys("</textarea>")
    WebDriverWait(page, 10).until(lambda d: "</textarea>" in d.find_element(By.ID, "sb-list").text)
    assert page.execute_script("return window.__alerts") == 0
    assert page.execute_script("return window.__injected") == []
    assert page.execute_script("return document.querySelectorAll('img[src=\"x\"], textarea').length") == 0
    assert len(page.find_elements(By.TAG_NAME, "script")) == 2  # the data block and the page script
    links = page.find_elements(By.CSS_SELECTOR, "#sb-list a.permalink")
    assert links and all(a.get_attribute("href").split("#", 1)[1].startswith("samples?") for a in links)
    box.clear()
    box.send_keys(" ")
    box.clear()


def test_page_size_and_screenshot_artifact(page, report):
    assert report[0].stat().st_size < 5 * 1024 * 1024
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.execute_script("window.scrollTo(0, 0)")
    out = ARTIFACTS / "report.png"
    page.save_screenshot(str(out))
    assert out.stat().st_size > 10_000
    assert page.get_log("browser") == []


def test_failed_captions_and_missing_scores_render_without_errors(tmp_path):
    """The pipeline's failure shapes: a caption that failed (null caption_index) and a benchmark with no score."""
    dirs = build_runs(tmp_path / "runs", captioners=(("hf:x/a", 1, 0.6, 20), ("hf:x/b", 1, 0.4, 20)), n_mmstar=12,
                      n_chart=6)
    lines = [json.loads(x) for x in (dirs[0] / "samples.jsonl").read_text(encoding="utf-8").split("\n") if x]
    lines[0].update(caption_index=None, caption=None, caption_tokens=None, raw="", extracted=None, score=0.0,
                    correct=False, status="failed", error="captioning failed: out of memory")
    (dirs[0] / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in lines), encoding="utf-8")
    res = json.loads((dirs[1] / "results.json").read_text())
    res["benchmarks"]["ChartQA"].update(score=None, n=0, ci95=None)
    (dirs[1] / "results.json").write_text(json.dumps(res))
    path = write_report(dirs, tmp_path / "r.html")
    with chromium(1280, 900) as driver:
        driver.get(path.resolve().as_uri())
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#sb-list article.sample"))
        box = driver.find_element(By.ID, "sb-search")
        box.send_keys("mmstar-0")
        WebDriverWait(driver, 10).until(lambda d: "captioning failed" in d.find_element(By.ID, "sb-list").text)
        assert "No caption: captioning failed" in driver.find_element(By.ID, "sb-list").text
        row = driver.find_element(By.CSS_SELECTOR, 'tbody.runs tr[data-label="x/b"]')
        assert "—" in row.text
        assert driver.get_log("browser") == []


# ------------------------------------------------------------------ pickers, section bar, keyboard details

def test_every_picker_choice_shows_exactly_its_own_panel(page):
    picks = page.find_elements(By.CSS_SELECTOR, "select.panel-pick")
    assert len(picks) >= 2  # the significance matrices and the length charts
    for sel in picks:
        box = page.find_element(By.ID, sel.get_attribute("data-target"))
        choice = Select(sel)
        values = [o.get_attribute("value") for o in choice.options]
        for value in values[1:] + values[:1]:  # every choice, then back to the first
            page.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", sel)
            choice.select_by_value(value)
            shown = [p for p in box.find_elements(By.CSS_SELECTOR, ":scope > .panel") if p.is_displayed()]
            assert [p.get_attribute("data-index") for p in shown] == [value]
            inner = shown[0].find_elements(By.CSS_SELECTOR, "table.matrix, svg.chart")
            assert inner and inner[0].is_displayed() and inner[0].size["height"] > 50


def test_section_bar_stays_at_the_top_while_scrolling(page):
    page.execute_script("window.scrollTo(0, document.body.scrollHeight / 2)")
    bar = page.find_element(By.CSS_SELECTOR, "nav.sections")
    assert page.execute_script("return window.scrollY") > 1000
    assert page.execute_script("return arguments[0].getBoundingClientRect().top", bar) == 0
    page.execute_script("window.scrollTo(0, 0)")


def test_a_matrix_cell_shows_its_interval_p_and_n_on_keyboard_focus(page):
    detail = page.find_element(By.ID, "mdetail-1")
    cell = page.find_element(By.CSS_SELECTOR, "#matrices-1 .panel:not([hidden]) button.mcell")
    page.execute_script("arguments[0].focus()", cell)
    text = detail.text
    assert "95% CI" in text and "questions" in text and ("p < 0.001" in text or "p = " in text)
    assert "p = <" not in text


# ------------------------------------------------------------------ permalinks and CSV

def _wait_file(folder: Path, name: str) -> Path:
    path = folder / name
    WebDriverWait(None, 30, poll_frequency=0.1).until(lambda _: path.is_file() and path.stat().st_size > 0)
    return path


def _csv(path: Path) -> list[list[str]]:
    import csv

    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


def test_a_permalink_reopens_the_question_it_names_with_its_filters(page):
    Select(page.find_element(By.ID, "sb-bench")).select_by_visible_text("MMStar")
    Select(page.find_element(By.ID, "sb-run")).select_by_visible_text("verbose")
    _click(page, page.find_element(By.ID, "sb-next"))
    _click(page, page.find_element(By.ID, "sb-next"))
    link = page.find_elements(By.CSS_SELECTOR, "#sb-list a.permalink")[3]
    section = link.find_element(By.XPATH, "ancestor::section[contains(@class,'question')]")
    qid = section.get_attribute("data-question")
    url = link.get_attribute("href")
    assert "page=" not in url and "qid=" in url
    page.get("about:blank")
    page.get(url)
    WebDriverWait(page, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "section.question.target-hit"))
    hit = page.find_element(By.CSS_SELECTOR, "section.question.target-hit")
    assert hit.get_attribute("data-question") == qid
    assert page.execute_script("var r = arguments[0].getBoundingClientRect(); "
                               "return r.bottom > 0 && r.top < window.innerHeight", hit)
    assert Select(page.find_element(By.ID, "sb-bench")).first_selected_option.text == "MMStar"
    assert Select(page.find_element(By.ID, "sb-run")).first_selected_option.text == "verbose"
    assert page.find_element(By.ID, "sb-count").text.startswith("21–30 of ")
    assert page.get_log("browser") == []
    for sel in ("sb-run", "sb-bench"):
        Select(page.find_element(By.ID, sel)).select_by_index(0)


def test_csv_exports_download_the_rows_shown(page, report, tmp_path):
    page.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    _click(page, _sort_button(page, "ChartQA"))
    shown = _rows(page)
    _click(page, page.find_element(By.CSS_SELECTOR, "button.csv-board"))
    rows = _csv(_wait_file(tmp_path, "leaderboard.csv"))
    header, body = rows[0], rows[1:]
    assert header[:4] == ["captioner", "spec", "blind_baseline", "MMStar"]
    runs = [r for r in body if not r[0].endswith("(reported)")]
    assert [r[0] for r in runs] == shown
    results = _expected_results(report[1])
    for r in runs:
        assert float(r[header.index("ChartQA")]) == pytest.approx(results[r[0]]["benchmarks"]["ChartQA"]["score"],
                                                                   abs=1e-3)
    _click(page, _sort_button(page, "Average"))

    Select(page.find_element(By.ID, "sb-bench")).select_by_visible_text("ChartQA")
    Select(page.find_element(By.ID, "sb-run")).select_by_visible_text("example/captioner-small")
    _click(page, page.find_element(By.ID, "sb-wrong"))
    _click(page, page.find_element(By.ID, "sb-csv"))
    rows = _csv(_wait_file(tmp_path, "samples.csv"))
    header, body = rows[0], rows[1:]
    expected = [json.loads(x) for p in report[1].glob("hf-example-captioner-small/samples.jsonl")
                for x in p.read_text(encoding="utf-8").split("\n") if x]
    expected = [s for s in expected if s["benchmark"] == "ChartQA" and not s["correct"]]
    assert len(body) == len(expected) > 20  # every page, not only the first
    assert sorted((r[header.index("question_id")], r[header.index("caption_index")]) for r in body) == \
        sorted((s["question_id"], str(s["caption_index"] + 1)) for s in expected)
    assert {r[header.index("right")] for r in body} == {"no"}
    assert {r[header.index("captioner")] for r in body} == {"example/captioner-small"}
    _click(page, page.find_element(By.ID, "sb-wrong"))
    for sel in ("sb-run", "sb-bench"):
        Select(page.find_element(By.ID, sel)).select_by_index(0)


def test_compare_mode_counts_disagreements_and_diffs_the_captions(page, report):
    Select(page.find_element(By.ID, "sb-run")).select_by_visible_text("example/captioner-large")
    Select(page.find_element(By.ID, "sb-compare")).select_by_visible_text("verbose")
    samples = {}
    for folder, name in (("hf-example-captioner-large", "a"), ("file-captions-verbose-jsonl", "b")):
        for line in (report[1] / folder / "samples.jsonl").read_text(encoding="utf-8").split("\n"):
            if line:
                s = json.loads(line)
                samples.setdefault((s["benchmark"], s["question_id"]), {}).setdefault(name, []).append(s["correct"])
    right = {k: {n: sum(v) * 2 > len(v) for n, v in sides.items()} for k, sides in samples.items()}
    expected = {"only-a": sum(r["a"] and not r["b"] for r in right.values()),
                "only-b": sum(r["b"] and not r["a"] for r in right.values()),
                "both": sum(r["a"] and r["b"] for r in right.values()),
                "neither": sum(not r["a"] and not r["b"] for r in right.values())}
    counts = {s.get_attribute("data-count"): int(s.find_element(By.TAG_NAME, "b").text)
              for s in page.find_elements(By.CSS_SELECTOR, "#sb-summary span[data-count]")}
    assert counts == expected
    assert "only example/captioner-large right" in page.find_element(By.ID, "sb-summary").text
    diff = page.find_element(By.CSS_SELECTOR, "#sb-list article.sample details.diff")
    _click(page, diff.find_element(By.TAG_NAME, "summary"))
    assert diff.find_elements(By.CSS_SELECTOR, ".only-a") and diff.find_elements(By.CSS_SELECTOR, ".only-b")
    for sel in ("sb-compare", "sb-run"):
        Select(page.find_element(By.ID, sel)).select_by_index(0)


def test_dark_mode_follows_the_system_setting(page):
    light = page.execute_script("return getComputedStyle(document.body).backgroundColor")
    page.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    dark = page.execute_script("return getComputedStyle(document.body).backgroundColor")
    page.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    assert light != dark
    assert sum(int(x) for x in dark[dark.index("(") + 1:-1].split(",")[:3]) < 150  # a dark background


# ------------------------------------------------------------------ demo-shaped runs: names, paths, estimators

@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, Path]:
    from .demo_runs import build_demo_like_runs

    root = tmp_path_factory.mktemp("demo-like")
    build_demo_like_runs(root, estimator="expected")
    return write_report([root / "runs"], root / "out" / "leaderboard.html"), root


def _local_paths(root: Path) -> list[str]:
    from prism_eval.engines.cache_dir import cache_root

    paths = [str(root.resolve()), str(cache_root().resolve()), str(Path.cwd().resolve())]
    if str(Path.home()) != "/":
        paths.append(str(Path.home()) + "/")
    return paths


def test_no_absolute_path_of_the_machine_appears_in_the_page(demo):
    import re

    path, root = demo
    with chromium(1280, 1000) as driver:
        driver.get(path.resolve().as_uri())
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#sb-list article.sample"))
        for d in driver.find_elements(By.CSS_SELECTOR, "details"):
            driver.execute_script("arguments[0].open = true", d)
        html = re.sub(r"data:image/[^\"']+", "", driver.page_source)
        text = driver.find_element(By.TAG_NAME, "body").text
        names = [tr.get_attribute("data-label") for tr in driver.find_elements(By.CSS_SELECTOR, "tbody.runs tr")]
        options = [o.text for o in Select(driver.find_element(By.ID, "sb-run")).options]
    for local in _local_paths(root):
        assert local not in html and local not in text, local
    assert sorted(names) == ["none", "partial", "reference", "tiny-llava-demo", "wrong"]
    assert "tiny-llava-demo" in options and all(len(o) < 40 for o in options)
    assert "file:../../data/captions/reference.jsonl" in text  # the full spec, relative to the run folder
    assert "hf:$PRISM_EVAL_CACHE/models/tiny-llava-demo" in text


def test_expected_estimator_answers_are_right_when_the_top_choice_is(demo):
    path, root = demo
    samples = [json.loads(x) for x in (root / "runs" / "reference" / "samples.jsonl").read_text().split("\n") if x]
    top = {s["question_id"]: max(json.loads(s["raw"]).items(), key=lambda kv: kv[1])[0] for s in samples}
    gold = {s["question_id"]: s["gold"] for s in samples}
    assert not any(s["correct"] for s in samples)  # the record's own flag: score >= 1, never under "expected"
    with chromium(1280, 1000) as driver:
        driver.get(path.resolve().as_uri())
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#sb-list article.sample"))
        Select(driver.find_element(By.ID, "sb-run")).select_by_visible_text("reference")
        seen = {}
        while True:
            for sec in driver.find_elements(By.CSS_SELECTOR, "#sb-list section.question"):
                answer = sec.find_element(By.CSS_SELECTOR, ".answer")
                seen[sec.get_attribute("data-question")] = (answer.get_attribute("data-correct"), answer.text)
            nxt = driver.find_element(By.ID, "sb-next")
            if not nxt.is_enabled():
                break
            _click(driver, nxt)
        _click(driver, driver.find_element(By.ID, "sb-wrong"))
        wrong_count = driver.find_element(By.ID, "sb-count").text
        assert driver.get_log("browser") == []
    assert set(seen) == set(top)
    for q, (correct, text) in seen.items():
        assert correct == ("true" if top[q] == gold[q] else "false"), q
        assert f"top choice {top[q]} p " in text and "expected score" in text
    n_right = sum(top[q] == gold[q] for q in top)
    assert 0.7 * len(top) < n_right < len(top)
    assert wrong_count.endswith(f"· {len(top) - n_right} questions")


# ------------------------------------------------------------------ phones

def test_at_390_px_the_page_is_no_wider_than_the_screen(report, demo):
    with chromium(1280, 900) as driver:
        emulate_phone(driver, 390, 844)
        for path in (report[0], demo[0]):
            driver.get(path.resolve().as_uri())
            WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#sb-list article.sample"))
            assert driver.execute_script("return window.innerWidth") == 390
            assert driver.execute_script("return document.documentElement.scrollWidth") <= 390
            Select(driver.find_element(By.ID, "sb-run")).select_by_index(1)
            Select(driver.find_element(By.ID, "sb-compare")).select_by_index(2)
            diff = driver.find_element(By.CSS_SELECTOR, "#sb-list details.diff")
            driver.execute_script("arguments[0].open = true", diff)
            assert driver.execute_script("return document.documentElement.scrollWidth") <= 390
            name = driver.find_element(By.CSS_SELECTOR, "table.board th.name")
            assert name.rect["x"] + name.rect["width"] <= 390  # the name column is on screen
        assert driver.get_log("browser") == []
