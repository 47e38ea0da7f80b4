"""The diagnostics in a real headless Chromium, on real runs of a slice of the demo under two real judges.

`prism-eval run` scores the demo's reference, partial and wrong captions and the blind baseline on four
images of receipts and documents (option log-likelihoods, expected estimator), with `--length-curve 8,16,32`,
once under the built-in judge and once
under a tiny random judge; `prism-eval report` puts both families on one page. The page must show
the numbers the runs wrote: outcome bars whose segment widths are `outcomes`, the omission, hallucination,
vision-required and score @ K columns, one length-curve line per run, an outcome filter that keeps only
matching answers, and the judges' agreement, with the Markdown and JSON saying the same.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from prism_eval.report.md_text import md_escape
from prism_eval.report.screenshot import chromium, chromium_available

pytestmark = [pytest.mark.needs_browser, pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium and chromedriver "
                                                                  "(make setup-browser)")]

ARTIFACTS = Path(__file__).parents[1] / "artifacts" / "report"  # git-ignored: screenshots to look at
IMAGES = 4
LENGTHS = "8,16,32"
OUTCOMES = ("right", "omission", "hallucination", "unanswered")


def _run(bench: Path, captions: dict[str, Path], judge: str, out: Path) -> None:
    from click.testing import CliRunner

    from prism_eval.cli import main

    caps = [x for name in ("reference", "partial", "wrong") for x in ("-c", f"file:{captions[name]}")]
    result = CliRunner().invoke(main, ["run", *caps, "--blind", "-b", str(bench), "--judge", judge,
                                       "--scoring", "option-loglik", "--estimator", "expected",
                                       "--length-curve", LENGTHS,
                                       "--store", str(out.parent / f"{out.name}.sqlite"), "--out", str(out)])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def runs(tmp_path_factory, builtin_judge_spec, tiny_lm_dir) -> dict[str, Path]:
    """Two families of run folders: the demo slice under the built-in judge, and under a tiny random judge."""
    from prism_eval.demo import build_demo

    root = tmp_path_factory.mktemp("diag-browser")
    demo = build_demo(root / "demo", seed=0)
    rows = [json.loads(line) for line in demo.benchmark.read_text().splitlines()]
    images = list(dict.fromkeys(r["image"] for r in rows if r["category"] == "text"))[:IMAGES]
    bench = demo.benchmark.with_name("text-slice.jsonl")
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows if r["image"] in images))
    _run(bench, demo.captions, builtin_judge_spec, root / "smollm2")
    _run(bench, demo.captions, f"hf:{tiny_lm_dir}", root / "tiny")
    return {"smollm2": root / "smollm2", "tiny": root / "tiny", "root": root}


@pytest.fixture(scope="module")
def reports(runs) -> dict[str, Path]:
    from click.testing import CliRunner

    from prism_eval.cli import main

    out = {}
    for fmt in ("html", "md", "json"):
        out[fmt] = runs["root"] / f"board.{fmt}"
        result = CliRunner().invoke(main, ["report", str(runs["smollm2"]), str(runs["tiny"]), "-o", str(out[fmt])])
        assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def doc(reports) -> dict:
    return json.loads(reports["json"].read_text())


@pytest.fixture(scope="module")
def page(reports):
    with chromium(1280, 1100) as driver:
        driver.get(reports["html"].resolve().as_uri())
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#sb-list article.sample"))
        yield driver


def _records(family: Path) -> dict[str, dict]:
    """Each run's only benchmark result, by run folder name (reference, partial, wrong, none)."""
    return {d.name: next(iter(json.loads((d / "results.json").read_text())["benchmarks"].values()))
            for d in family.iterdir() if (d / "results.json").is_file()}


def _label_of(doc: dict, group: int) -> dict[str, str]:
    """Run folder name -> the label the report shows, for one board."""
    return {Path(r["run_dir"]).name: r["label"] for r in doc["groups"][group]["rows"]}


def _board_cells(page, gi: int, header: str) -> dict[str, str]:
    """One leaderboard column's cell texts by row label."""
    table = page.find_element(By.CSS_SELECTOR, f'table.board[data-group="{gi}"]')
    heads = [h.text.split("\n")[0].rstrip(" ↕↑↓") for h in table.find_elements(By.CSS_SELECTOR, "thead th")]
    col = heads.index(header)
    return {tr.get_attribute("data-label"): tr.find_elements(By.CSS_SELECTOR, "th, td")[col].text
            for tr in table.find_elements(By.CSS_SELECTOR, "tbody.runs tr")}


def _scroll(page, element) -> None:
    page.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", element)


def test_the_runs_hold_what_the_report_shows(runs, doc):
    for family in ("smollm2", "tiny"):
        for name, res in _records(runs[family]).items():
            assert res["outcomes"] and res["vision_required"] and set(res["by_length"]) == {"8", "16", "32", "full"}
    assert [g["setting"]["judge"] for g in doc["groups"]][0] == "builtin:smollm2-135m"
    assert all(g["length_budget"] == 32 for g in doc["groups"])


def test_outcome_bars_have_the_recorded_widths(page, runs, doc):
    for gi, family in ((1, "smollm2"), (2, "tiny")):
        records, labels = _records(runs[family]), _label_of(doc, gi - 1)
        section = page.find_element(By.ID, f"outcomes-{gi}")
        _scroll(page, section)
        for name, res in records.items():
            tr = section.find_element(By.CSS_SELECTOR, f'tr[data-label="{labels[name]}"]')
            svg = tr.find_element(By.CSS_SELECTOR, "svg.obar")
            total = svg.rect["width"]
            x = 0.0
            for k in OUTCOMES:
                seg = svg.find_element(By.CSS_SELECTOR, f'rect[data-outcome="{k}"]')
                assert float(seg.get_attribute("width")) == pytest.approx(res["outcomes"][k], abs=1e-4)
                assert float(seg.get_attribute("x")) == pytest.approx(x, abs=1e-3)
                x += res["outcomes"][k]
                # Drawn: the segment's share of the bar's on-screen width is its percent.
                drawn = page.execute_script("return arguments[0].getBoundingClientRect().width", seg)
                assert drawn / total * 100 == pytest.approx(res["outcomes"][k], abs=0.6)
                cell = tr.find_element(By.CSS_SELECTOR, f'td[data-outcome="{k}"]').text
                assert cell == f"{res['outcomes'][k]:.1f}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.save_screenshot(str(ARTIFACTS / "report_outcomes.png"))


def test_diagnostic_columns_show_the_recorded_numbers(page, runs, doc):
    for gi, family in ((1, "smollm2"), (2, "tiny")):
        records, labels = _records(runs[family]), _label_of(doc, gi - 1)
        omission = _board_cells(page, gi, "Omission %")
        halluc = _board_cells(page, gi, "Halluc. %")
        vision = _board_cells(page, gi, "Vision-required")
        at_k = _board_cells(page, gi, "Score @ 32 tokens")
        for name, res in records.items():
            label = labels[name]
            assert omission[label] == f"{res['omission']:.1f}"
            assert halluc[label] == f"{res['hallucination']:.1f}"
            v = res["vision_required"]
            assert vision[label] == f"{v['score']:.1f}\nn={v['n']} of {res['n']}"
            assert at_k[label] == f"{res['by_length']['32']:.1f}"
        blind = page.find_element(By.CSS_SELECTOR, f'table.board[data-group="{gi}"] tr[data-label="{labels["none"]}"] '
                                                   "td.vision")
        assert "blind-value" in blind.get_attribute("class")
        assert "does not answer above chance" in blind.get_attribute("title")
        heading = page.find_element(By.CSS_SELECTOR, f"#leaderboard-{gi} h2").text
        assert heading.endswith(doc["groups"][gi - 1]["setting"]["judge"].split("/")[-1])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    _scroll(page, page.find_element(By.ID, "leaderboard-1"))
    page.save_screenshot(str(ARTIFACTS / "report_diagnostic_columns.png"))


def test_length_plot_has_a_line_per_run_with_a_curve(page, runs, doc):
    for gi, family in ((1, "smollm2"), (2, "tiny")):
        records, labels = _records(runs[family]), _label_of(doc, gi - 1)
        lines = page.find_elements(By.CSS_SELECTOR, f"#curve-{gi} svg polyline.series.curve")
        assert sorted(x.get_attribute("data-label") for x in lines) == sorted(labels[n] for n in records)
        table = page.find_element(By.CSS_SELECTOR, f"#curve-{gi} table.curve")
        for name, res in records.items():
            tr = table.find_element(By.CSS_SELECTOR, f'tr[data-label="{labels[name]}"]')
            for k, v in res["by_length"].items():
                assert tr.find_element(By.CSS_SELECTOR, f'td[data-k="{k}"]').text == f"{v:.1f}"
        line = next(x for x in lines if x.get_attribute("data-label") == labels["reference"])
        assert len(line.get_attribute("points").split()) == 4  # 8, 16, 32 tokens and the whole captions
    _scroll(page, page.find_element(By.ID, "curve-1"))
    page.save_screenshot(str(ARTIFACTS / "report_length_curve.png"))


def test_outcome_filter_keeps_only_matching_answers(page, runs):
    samples = [json.loads(line) for family in ("smollm2", "tiny") for p in runs[family].glob("*/samples.jsonl")
               for line in p.read_text(encoding="utf-8").splitlines() if line]
    select = Select(page.find_element(By.ID, "sb-outcome"))
    for outcome in ("omission", "hallucination", "right"):
        questions = {(s["benchmark"], s["question_id"]) for s in samples if s["outcome"] == outcome}
        answers = sum(s["outcome"] == outcome for s in samples)
        select.select_by_value(outcome)
        count = page.find_element(By.ID, "sb-count").text
        if not questions:
            assert count.startswith("0 questions")
            continue
        assert count.endswith(f" {len(questions)} questions"), count
        shown = [a.get_attribute("data-outcome") for a in page.find_elements(By.CSS_SELECTOR, "#sb-list .answer")]
        assert shown and set(shown) == {outcome}
        badges = page.find_elements(By.CSS_SELECTOR, "#sb-list .answer .badge.oc")
        assert len(badges) == len(shown) and {b.text for b in badges} == {outcome}
        assert "oc=" + outcome in page.execute_script("return location.hash")
        assert len(shown) <= answers
    _scroll(page, page.find_element(By.ID, "samples"))
    page.save_screenshot(str(ARTIFACTS / "report_outcome_filter.png"))
    select.select_by_index(0)
    every = {a.get_attribute("data-outcome") for a in page.find_elements(By.CSS_SELECTOR, "#sb-list .answer")}
    assert len(every) > 1


def test_agreement_table_shows_tau_and_ci_as_json_and_markdown_do(page, doc, reports):
    [entry] = doc["judge_agreement"]
    assert entry["judges"][0] == "builtin:smollm2-135m" and entry["n_captioners"] == 4
    row = page.find_element(By.CSS_SELECTOR, "#agreement table.agreement-pairs tbody tr")
    _scroll(page, row)
    md = reports["md"].read_text(encoding="utf-8")
    if entry["kendall_tau"] is None:  # a random judge may score every captioner the same
        assert f"undefined: {entry['reason']}" in row.text and f"undefined: {entry['reason']}" in md
    else:
        tau = row.find_element(By.CSS_SELECTOR, "td.tau")
        assert tau.text == f"{entry['kendall_tau']:.2f}" and float(tau.get_attribute("data-v")) == entry["kendall_tau"]
        ci = row.find_element(By.CSS_SELECTOR, "td.ci95").text
        assert ci == f"{entry['ci95'][0]:.2f} to {entry['ci95'][1]:.2f}"
        assert (f"| {entry['kendall_tau']:.2f} | {ci} | {entry['n_captioners']} | {entry['n_images']} | "
                f"{entry['n_questions']} |") in md
    boards = page.find_elements(By.CSS_SELECTOR, "#agreement table.judge-board")
    assert [b.get_attribute("data-judge") for b in boards] == entry["judges"]
    for b in boards:
        scores = entry["scores"].get(b.get_attribute("data-judge"))
        names = [tr.get_attribute("data-captioner") for tr in b.find_elements(By.CSS_SELECTOR, "tbody tr")]
        assert sorted(names) == sorted(entry["captioners"])
        if scores:
            assert names == sorted(scores, key=lambda c: -scores[c])
    page.save_screenshot(str(ARTIFACTS / "report_agreement.png"))


def test_markdown_and_json_carry_the_same_numbers(doc, reports, runs):
    md = reports["md"].read_text(encoding="utf-8")
    assert "## Judge: builtin:smollm2-135m" in md and "## Judge agreement" in md
    for gi, family in enumerate(("smollm2", "tiny")):
        records, group = _records(runs[family]), doc["groups"][gi]
        for row in group["rows"]:
            name = Path(row["run_dir"]).name
            [cell] = row["scores"].values()
            res = records[name]
            for key in ("omission", "hallucination", "outcomes", "by_length", "vision_required", "length_unit"):
                assert cell[key] == res[key]
            assert row["diagnostics"]["score_at_budget"] == res["by_length"]["32"]
            label = re.escape(md_escape(row["label"]))
            line = next(x for x in md.splitlines() if re.match(rf"\| {label}( \(blind baseline\))? \|", x))
            assert f" {res['omission']:.1f} | {res['hallucination']:.1f} |" in line
            assert f" {res['by_length']['32']:.1f} |" in line
            assert f"(n={res['vision_required']['n']}/{res['n']})" in line
