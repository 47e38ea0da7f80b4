"""The HTML report in a real headless Chromium (Debian's chromium + chromium-driver).

One page of 1,000 samples with hostile model text is loaded once; the tests read the
browser's console and network logs and drive the page like a reader would.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from prism_eval.report import write_report
from prism_eval.report.screenshot import chromium, chromium_available

from .test_fixture import HOSTILE, build_runs

pytestmark = [pytest.mark.needs_browser, pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium and chromedriver "
                                                                  "(make setup-browser)")]

ARTIFACTS = Path(__file__).parent / "artifacts"

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
    out = {}
    for p in runs.glob("*/results.json"):
        r = json.loads(p.read_text())
        out[r["captioner"]] = r
    return out


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


def test_clicking_a_column_sorts_the_rows(page, report):
    results = _expected_results(report[1])
    button = page.find_element(By.XPATH, "//table[contains(@class,'board')]//thead//button[normalize-space()='ChartQA']")
    _click(page, button)
    by_chart = sorted(results, key=lambda c: -results[c]["benchmarks"]["ChartQA"]["score"])
    assert _rows(page) == by_chart
    assert button.find_element(By.XPATH, "..").get_attribute("aria-sort") == "descending"
    _click(page, button)
    assert _rows(page) == by_chart[::-1]
    _click(page, page.find_element(By.XPATH, "//table[contains(@class,'board')]//thead//button[normalize-space()='Captioner']"))
    assert _rows(page) == sorted(results)
    _click(page, page.find_element(By.XPATH, "//table[contains(@class,'board')]//thead//button[normalize-space()='Average']"))
    assert _rows(page) == sorted(results, key=lambda c: -results[c]["average"])


def _count_text(driver) -> str:
    return driver.find_element(By.ID, "sb-count").text


def test_wrong_answers_filter_shows_only_wrong_answers(page, report):
    runs = report[1]
    samples = [json.loads(line) for p in runs.glob("*/samples.jsonl")
               for line in p.read_text(encoding="utf-8").split("\n") if line]
    questions = {(s["benchmark"], s["question_id"]) for s in samples}
    with_wrong = {(s["benchmark"], s["question_id"]) for s in samples if not s["correct"]}
    assert _count_text(page).endswith(f"of {len(questions)} questions")
    _click(page, page.find_element(By.ID, "sb-wrong"))
    assert _count_text(page).endswith(f"of {len(with_wrong)} questions")
    verdicts = [a.get_attribute("data-correct") for a in page.find_elements(By.CSS_SELECTOR, "#sb-list .answer")]
    assert verdicts and set(verdicts) == {"false"}
    _click(page, page.find_element(By.ID, "sb-wrong"))
    verdicts = {a.get_attribute("data-correct") for a in page.find_elements(By.CSS_SELECTOR, "#sb-list .answer")}
    assert verdicts == {"true", "false"}


def test_benchmark_captioner_filters_and_side_by_side_compare(page):
    Select(page.find_element(By.ID, "sb-bench")).select_by_visible_text("ChartQA")
    arts = page.find_elements(By.CSS_SELECTOR, "#sb-list article.sample")
    assert arts and {a.get_attribute("data-bench") for a in arts} == {"ChartQA"}
    Select(page.find_element(By.ID, "sb-run")).select_by_visible_text("hf:example/captioner-large")
    sides = page.find_elements(By.CSS_SELECTOR, "#sb-list .side .run-label")
    assert sides and {s.text for s in sides} == {"hf:example/captioner-large"}
    Select(page.find_element(By.ID, "sb-compare")).select_by_visible_text("none (blind baseline)")
    arts = page.find_elements(By.CSS_SELECTOR, "#sb-list article.sample")
    assert arts
    for a in arts[:5]:
        labels = [s.text for s in a.find_elements(By.CSS_SELECTOR, ".side .run-label")]
        assert labels == ["hf:example/captioner-large", "none"]
        assert len(a.find_elements(By.CSS_SELECTOR, "img.thumb")) == 1  # one image, two captioners
    assert _count_text(page).endswith("questions compared")
    ARTIFACTS.mkdir(exist_ok=True)
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
    box.clear()
    box.send_keys(" ")
    box.clear()


def test_page_size_and_screenshot_artifact(page, report):
    assert report[0].stat().st_size < 5 * 1024 * 1024
    ARTIFACTS.mkdir(exist_ok=True)
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
        row = driver.find_element(By.CSS_SELECTOR, 'tbody.runs tr[data-label="hf:x/b"]')
        assert "—" in row.text
        assert driver.get_log("browser") == []
