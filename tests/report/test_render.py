"""Report outputs from real run directories: loading errors, Markdown, JSON, static HTML safety, CLI."""
from __future__ import annotations

import base64
import io
import json
import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from markdown_it import MarkdownIt
from PIL import Image

from prism_eval.cli.report import report_command
from prism_eval.report import ReportError, write_report
from prism_eval.runner.naming import display_names

from .test_fixture import HOSTILE, build_runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report") / "runs"
    build_runs(root)
    return root


@pytest.fixture(scope="module")
def html(runs) -> tuple[Path, str]:
    out = write_report([runs], runs.parent / "out" / "board.html")
    return out, out.read_text(encoding="utf-8")


def _results(runs: Path) -> dict[str, dict]:
    """Each run's results.json by the name the report shows."""
    raw = [json.loads(p.read_text()) for p in runs.glob("*/results.json")]
    names = display_names([r["captioner"] for r in raw])
    return {names[r["captioner"]]: r for r in raw}


def _payload(text: str) -> dict:
    m = re.search(r'<script type="application/json" id="prism-data">(.*?)</script>', text, re.S)
    return json.loads(m.group(1))


# ------------------------------------------------------------------ loading

def test_missing_path_and_empty_folder_are_one_line_errors(tmp_path):
    with pytest.raises(ReportError, match=r"nope: no such file or directory"):
        write_report([tmp_path / "nope"], tmp_path / "r.html")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match=r"empty: no results.json in it or in its subfolders"):
        write_report([tmp_path / "empty"], tmp_path / "r.html")


def test_bad_results_and_samples_name_the_file_and_line(tmp_path):
    d = build_runs(tmp_path / "runs", captioners=(("hf:x/y", 1, 0.5, 20),))[0]
    res = json.loads((d / "results.json").read_text())
    del res["judge"]
    (d / "results.json").write_text(json.dumps(res))
    with pytest.raises(ReportError) as e:
        write_report([d], tmp_path / "r.html")
    assert str(e.value) == f"{d / 'results.json'}: missing key 'judge'"

    (d / "results.json").write_text("{not json")
    with pytest.raises(ReportError, match=r"results.json: not valid JSON"):
        write_report([d], tmp_path / "r.html")

    d2 = build_runs(tmp_path / "runs2", captioners=(("hf:x/y", 1, 0.5, 20),))[0]
    lines = (d2 / "samples.jsonl").read_text(encoding="utf-8").split("\n")
    bad = json.loads(lines[4])
    bad["score"] = 3
    lines[4] = json.dumps(bad)
    (d2 / "samples.jsonl").write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(ReportError, match=r"samples.jsonl:5: 'score' should be a number in \[0, 1\]"):
        write_report([d2], tmp_path / "r.html")
    lines[4] = "{cut off"
    (d2 / "samples.jsonl").write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(ReportError, match=r"samples.jsonl:5: malformed JSON"):
        write_report([d2], tmp_path / "r.html")


def test_unknown_suffix_needs_format(runs, tmp_path):
    with pytest.raises(ReportError, match=r"cannot tell the format.*\.txt"):
        write_report([runs], tmp_path / "r.txt")
    assert write_report([runs], tmp_path / "r.txt", "md").read_text().startswith("# ")


def test_mixing_judges_and_other_settings_is_refused_with_one_line_and_grouped_on_request(runs, tmp_path):
    # Another judge and one caption per image instead of two: not only the judge differs, so no agreement boards.
    other = build_runs(tmp_path / "other", judge="openai:gpt-4o-mini@http://127.0.0.1:9/v1",
                       captioners=(("hf:x/y", 1, 0.5, 20), ("none", 1, 0.0, 0)))
    with pytest.raises(ReportError) as e:
        write_report([runs, *other], tmp_path / "r.html")
    msg = str(e.value)
    assert "\n" not in msg
    assert "judge 'builtin:smollm2-135m'" in msg and "'openai:gpt-4o-mini@http://127.0.0.1:9/v1'" in msg
    assert "--group" in msg
    doc = json.loads(write_report([runs, *other], tmp_path / "g.json", group=True).read_text())
    assert [g["setting"]["judge"] for g in doc["groups"]] == ["builtin:smollm2-135m",
                                                               "openai:gpt-4o-mini@http://127.0.0.1:9/v1"]
    assert [len(g["rows"]) for g in doc["groups"]] == [4, 2]
    page = write_report([runs, *other], tmp_path / "g.html", group=True).read_text(encoding="utf-8")
    assert 'id="leaderboard-2"' in page and "Leaderboard 2 of 2" in page


def test_a_run_without_samples_still_ranks_but_is_left_out_of_paired_tests(tmp_path):
    dirs = build_runs(tmp_path / "runs", captioners=(("hf:x/a", 1, 0.6, 20), ("hf:x/b", 1, 0.3, 20),
                                                     ("hf:x/c", 1, 0.5, 20)))
    (dirs[2] / "samples.jsonl").unlink()
    doc = json.loads(write_report(dirs, tmp_path / "r.json").read_text())
    (g,) = doc["groups"]
    assert {r["captioner"] for r in g["rows"]} == {"hf:x/a", "hf:x/b", "hf:x/c"}
    assert {(p["a"], p["b"]) for p in g["paired"]} == {("x/a", "x/b")}
    assert {p["method"] for p in g["paired"] if p["benchmark"] != "Average"} == {"mcnemar-exact"}
    page = write_report(dirs, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "no samples.jsonl" in page
    payload = _payload(page)
    assert {payload["runs"][s["r"]]["label"] for s in payload["samples"]} == {"x/a", "x/b"}


def test_pipeline_failure_shapes_render(tmp_path):
    """A failed caption (caption_index/caption/caption_tokens null) and a benchmark nothing could be scored on."""
    dirs = build_runs(tmp_path / "runs", captioners=(("hf:x/a", 1, 0.6, 20), ("hf:x/b", 1, 0.4, 20)))
    lines = [json.loads(x) for x in (dirs[0] / "samples.jsonl").read_text(encoding="utf-8").split("\n") if x]
    for s in lines[:3]:
        s.update(caption_index=None, caption=None, caption_tokens=None, raw="", extracted=None, score=0.0,
                 correct=False, status="failed", error="captioning failed: CUDA out of memory")
    (dirs[0] / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in lines), encoding="utf-8")
    res = json.loads((dirs[1] / "results.json").read_text())
    res["benchmarks"]["ChartQA"].update(score=None, n=0, ci95=None, best_of_n=None, mean_caption_tokens=None)
    res["average"] = None
    (dirs[1] / "results.json").write_text(json.dumps(res))
    doc = json.loads(write_report(dirs, tmp_path / "r.json").read_text())
    rows = {r["captioner"]: r for r in doc["groups"][0]["rows"]}
    assert rows["hf:x/b"]["scores"]["ChartQA"] is None and rows["hf:x/b"]["average"] is None
    assert rows["hf:x/a"]["scores"]["ChartQA"]["rank"] == 1.0
    paired = [p for p in doc["groups"][0]["paired"] if p["benchmark"] == "MMStar"]
    assert paired[0]["n"] == 90 - 3  # questions with a failed sample are left out, as in the score
    page = write_report(dirs, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "x/b has no result for ChartQA" in page
    assert any(s["ci"] == -1 for s in _payload(page)["samples"])
    assert "| — |" in write_report(dirs, tmp_path / "r.md").read_text(encoding="utf-8")


# ------------------------------------------------------------------ Markdown

class _Tables(HTMLParser):
    """Cells of every <table> in rendered HTML, with whether each cell was bold."""

    def __init__(self):
        super().__init__()
        self.tables: list[list[list[tuple[str, bool]]]] = []
        self._cell: list[str] | None = None
        self._bold = False

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell, self._bold = [], False
        elif tag == "strong" and self._cell is not None:
            self._bold = True

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(("".join(self._cell).strip(), self._bold))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _md_tables(md: str) -> list[list[list[tuple[str, bool]]]]:
    p = _Tables()
    p.feed(MarkdownIt("commonmark").enable("table").render(md))
    return p.tables


def test_markdown_is_one_gfm_table_with_cis_n_and_length_and_best_in_bold(runs, tmp_path):
    md = write_report([runs], tmp_path / "board.md").read_text(encoding="utf-8")
    tables = _md_tables(md)
    board = tables[0]
    header = [c for c, _ in board[0]]
    assert header == ["Captioner", "MMStar (n=90)", "ChartQA (n=35)", "Average", "Rank", "vs blind", "Avg rank",
                      "Caption length (words)"]  # runs that record no length unit count words
    results = _results(runs)
    run_rows = [r for r in board[1:] if "(reported)" not in r[0][0]]
    ref_rows = [r for r in board[1:] if "(reported)" in r[0][0]]
    assert len(run_rows) == 4 and len(ref_rows) == 6
    assert any(r[0][0] == "none (blind baseline)" for r in run_rows)
    for col, bench in ((1, "MMStar"), (2, "ChartQA")):
        values = {r[0][0].replace(" (blind baseline)", ""): r[col][0] for r in run_rows}
        for name, cell in values.items():
            res = results[name]["benchmarks"][bench]
            assert cell == f"{res['score']:.1f} ({res['ci95'][0]:.1f}–{res['ci95'][1]:.1f})"
        best = max(float(v.split()[0]) for v in values.values())
        for r in run_rows:
            assert r[col][1] == (float(r[col][0].split()[0]) == best)
        assert not any(r[col][1] for r in ref_rows)
    avgs = [float(r[3][0].split()[0]) for r in run_rows]
    assert avgs == sorted(avgs, reverse=True)
    assert next(r for r in ref_rows if r[0][0].startswith("CapRL-3B"))[1][0] == "55.0"  # MMStar, Table 3
    blind = next(r for r in run_rows if r[0][0] == "none (blind baseline)")
    assert blind[5][0] == "baseline" and all(r[5][0].startswith("+") for r in run_rows if r is not blind)
    assert md.count("none (blind baseline)") == md.count("none")  # one name for the baseline throughout


def test_markdown_pairwise_results_are_a_k_by_k_matrix(runs, tmp_path):
    md = write_report([runs], tmp_path / "board.md").read_text(encoding="utf-8")
    doc = json.loads(write_report([runs], tmp_path / "board.json").read_text())
    matrix = _md_tables(md)[1]
    assert [c for c, _ in matrix[0]] == ["row − column", "1", "2", "3", "4"]
    labels = [r["label"] for r in doc["groups"][0]["rows"]]
    assert [r[0][0].split(". ", 1)[1].replace(" (blind baseline)", "") for r in matrix[1:]] == labels
    paired = {(p["a"], p["b"]): p for p in doc["groups"][0]["paired"] if p["benchmark"] == "Average"}
    for i, a in enumerate(labels):
        for j, b in enumerate(labels):
            cell = matrix[1 + i][1 + j][0]
            if i == j:
                assert cell == "·"
                continue
            p = paired.get((a, b)) or paired[(b, a)]
            diff = p["diff"] if (a, b) in paired else -p["diff"]
            assert cell == f"{diff:+.1f}" + ("*" if p["p_value"] < 0.05 else "")
    assert not re.search(r"^- .* vs ", md, re.M)  # no pairwise list growing with the square of the runs


def test_markdown_escapes_hostile_captioner_names(tmp_path):
    name = "file:a|b_<img src=x onerror=alert(1)>*.jsonl"
    dirs = build_runs(tmp_path / "runs", captioners=((name, 1, 0.5, 20), ("none", 1, 0.0, 0)))
    md = write_report(dirs, tmp_path / "b.md").read_text(encoding="utf-8")
    board = _md_tables(md)[0]
    assert all(len(r) == len(board[0]) for r in board)
    assert {board[1][0][0], board[2][0][0]} == {"a|b_<img src=x onerror=alert(1)>*", "none (blind baseline)"}
    assert "<img" not in MarkdownIt("commonmark").enable("table").render(md)


# ------------------------------------------------------------------ JSON

def test_json_leaderboard_matches_the_runs(runs, tmp_path):
    doc = json.loads(write_report([runs], tmp_path / "board.json").read_text())
    (g,) = doc["groups"]
    results = _results(runs)
    assert {k: g["setting"][k] for k in ("judge", "protocol", "scoring", "estimator", "num_captions", "seed")} == {
        "judge": "builtin:smollm2-135m", "protocol": "prism", "scoring": "generate", "estimator": "argmax",
        "num_captions": 2, "seed": 0}
    assert g["benchmarks"] == ["MMStar", "ChartQA"]
    for row in g["rows"]:
        res = results[row["label"]]
        assert row["captioner"] == res["captioner"]  # relative specs are shown as they are
        assert row["average"] == pytest.approx(res["average"])
        assert row["scores"]["MMStar"]["ci95"] == res["benchmarks"]["MMStar"]["ci95"]
        assert row["config_hash"] == res["config"]["config_hash"]
    assert [r["average"] for r in g["rows"]] == sorted((r["average"] for r in g["rows"]), reverse=True)
    assert [r["blind_baseline"] for r in g["rows"]].count(True) == 1
    ranks = sorted(r["avg_rank"] for r in g["rows"])
    assert sum(ranks) == pytest.approx(1 + 2 + 3 + 4)
    assert {x["status"] for x in g["reference"]} == {"reported"} and len(g["reference"]) == 6
    assert len(g["paired"]) == 6 * 3  # 4 captioners -> 6 pairs; Average, MMStar, ChartQA
    assert all(0 < p["p_value"] <= 1 for p in g["paired"])
    blind = next(p for p in g["paired"] if p["benchmark"] == "Average" and "none" in (p["a"], p["b"])
                 and "example/captioner-large" in (p["a"], p["b"]))
    assert blind["p_value"] < 0.01  # skill 0.7 against text priors: clearly real
    assert set(g["categories"]["MMStar"]["none"]) == {"coarse perception", "fine-grained perception",
                                                      "instance reasoning", "logical reasoning", "math",
                                                      "science & technology"}


def test_no_reference_flag_drops_reported_rows(runs, tmp_path):
    doc = json.loads(write_report([runs], tmp_path / "n.json", reference=False).read_text())
    assert doc["groups"][0]["reference"] == []
    page = write_report([runs], tmp_path / "n.html", reference=False).read_text(encoding="utf-8")
    assert "badge reported" not in page


# ------------------------------------------------------------------ HTML (static checks; the browser test runs it)

def test_html_is_self_contained_and_small(html):
    path, text = html
    size = path.stat().st_size
    assert size < 5 * 1024 * 1024, size
    payload = _payload(text)
    assert len(payload["samples"]) == 1000 and payload["total"] == 1000
    # Nothing that could fetch: no external URLs in attributes or CSS, no imports, a CSP that allows none.
    assert not re.search(r'(src|href|action)\s*=\s*"(?!data:|#)', text)
    assert "@import" not in text and "url(" not in text and "//fonts." not in text
    csp = unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', text).group(1))
    assert "default-src 'none'" in csp and "img-src data:" in csp and "unsafe" not in csp


def test_html_stays_under_5_mb_when_each_of_1000_samples_has_its_own_image(tmp_path):
    dirs = build_runs(tmp_path / "runs", captioners=(("hf:x/one", 1, 0.5, 60),), n_mmstar=1000, n_chart=0)
    out = write_report(dirs, tmp_path / "r.html")
    payload = _payload(out.read_text(encoding="utf-8"))
    assert len(payload["samples"]) == 1000 and len([u for u in payload["images"] if u]) == 1000
    assert out.stat().st_size < 5 * 1024 * 1024, out.stat().st_size


def test_html_thumbnails_are_embedded_and_downscaled(html):
    payload = _payload(html[1])
    images = [u for u in payload["images"] if u]
    assert len(images) == 110  # 90 MMStar images + 20 ChartQA charts, each embedded once
    for uri in images[:5]:
        assert uri.startswith("data:image/jpeg;base64,")
        im = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
        assert max(im.size) <= payload["thumb_px"] <= 160


def test_html_never_contains_model_text_as_markup(html):
    text = html[1]
    for h in HOSTILE:
        assert h not in text
    assert "alert(1)" in text  # the text is there, escaped
    js = re.search(r"<script>(.*?)</script>", text, re.S).group(1)
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in js
    payload = _payload(text)
    assert any("<script>alert(1)</script>" in t for t in payload["text"])  # round-trips exactly


def test_max_samples_keeps_whole_questions(runs, tmp_path):
    text = write_report([runs], tmp_path / "cap.html", max_samples=300).read_text(encoding="utf-8")
    payload = _payload(text)
    assert payload["total"] == 1000 and payload["shown"] == len(payload["samples"]) <= 300
    per_q: dict[tuple, int] = {}
    for s in payload["samples"]:
        per_q[(s["b"], s["q"])] = per_q.get((s["b"], s["q"]), 0) + 1
    assert set(per_q.values()) == {8}  # 1 + 2 + 3 + 2 captions: every captioner's samples of a question
    assert f"{payload['shown']} of 1000 samples" in text


# ------------------------------------------------------------------ CLI

def test_cli_writes_each_format_and_reports_errors_in_one_line(runs, tmp_path):
    cli = CliRunner()
    for name, check in (("b.html", "<!doctype html>"), ("b.md", "| Captioner |"), ("b.json", '"groups"')):
        r = cli.invoke(report_command, [str(runs), "-o", str(tmp_path / name)])
        assert r.exit_code == 0, r.output
        assert r.output.startswith(f"wrote {tmp_path / name}")
        assert check in (tmp_path / name).read_text(encoding="utf-8")
    r = cli.invoke(report_command, [str(runs), "-o", str(tmp_path / "x.md"), "--format", "json", "--no-reference"])
    assert r.exit_code == 0 and json.loads((tmp_path / "x.md").read_text())["groups"][0]["reference"] == []
    r = cli.invoke(report_command, [str(tmp_path / "missing"), "-o", str(tmp_path / "y.html")])
    assert r.exit_code == 1
    assert r.output.strip() == f"Error: {tmp_path / 'missing'}: no such file or directory"
