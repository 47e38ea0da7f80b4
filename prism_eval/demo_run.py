"""`prism-eval demo`: the embedded benchmark, five captioners, the built-in judge, a leaderboard.

The captioners are chosen so the metric's validity can be read off the table:
reference captions state every fact, partial ones half, wrong ones state wrong
facts, `none` states nothing, and a tiny random-weight VLM runs the real
captioning code path (its captions are noise, so it should sit near blind).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

from rich.console import Console
from rich.table import Table

from prism_eval.engines.cache_dir import models_dir


def run_demo(out: Path, *, judge: str, scoring: str, seed: int, store: str | None, console: Console,
             execute: Callable, estimator: str = "argmax", limit: int | None = None) -> dict:
    from prism_eval.demo import build_demo
    from prism_eval.engines.cache_dir import publish_dir
    from prism_eval.engines.tiny import build_tiny_vlm

    started = time.perf_counter()
    data_dir = out / "data"
    build_demo(data_dir, seed=seed)
    tiny = publish_dir(models_dir() / "tiny-llava-demo", lambda tmp: build_tiny_vlm(tmp, arch="llava", seed=seed))
    captions = data_dir / "captions"
    captioners = [f"file:{captions / 'reference.jsonl'}", f"file:{captions / 'partial.jsonl'}",
                  f"file:{captions / 'wrong.jsonl'}", "none", f"hf:{tiny}"]
    console.print(f"demo benchmark: {data_dir / 'demo.jsonl'}; judge {judge}; scoring {scoring}")
    results = execute(captioners=captioners, blind=False, benchmarks=[str(data_dir / "demo.jsonl")], judge=judge,
                      protocol="caprl", compat=None, scoring=scoring, estimator=estimator, option_norm="mean",
                      num_captions=1, limit=limit, seed=seed, permutations=1, metric=None, label_quirk=False,
                      caption_max_tokens=48, caption_temperature=0.0, trust_remote_code=False, data_parallel=1,
                      store=store or str(out / "store.sqlite"), out=str(out / "runs"),
                      title="prism-eval demo: caption utility on the embedded benchmark")
    elapsed = time.perf_counter() - started
    summary = validity_summary(results)
    summary["seconds"] = round(elapsed, 1)
    _print_validity(summary, console)
    (out / "validity.json").write_text(json.dumps(summary, indent=2) + "\n")
    try:
        from prism_eval.report import write_report
    except ImportError:
        write_report = None
    if write_report is not None:
        run_dirs = [r.out_dir for r in results]
        html = write_report(run_dirs, out / "leaderboard.html")
        md = write_report(run_dirs, out / "leaderboard.md")
        console.print(f"leaderboard: {html} and {md}")
    console.print(f"demo finished in {elapsed:.0f} s")
    return summary


def _question_scores(run_dir: Path) -> dict[str, tuple[float, str]]:
    """Per question: the mean score over its captions, and its image (the bootstrap cluster)."""
    sums: dict[str, list] = {}
    for line in (run_dir / "samples.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if rec["status"] == "failed":
            continue
        entry = sums.setdefault(rec["question_id"], [0.0, 0, rec["image"]])
        entry[0] += rec["score"]
        entry[1] += 1
    return {q: (total / n, image) for q, (total, n, image) in sums.items()}


def validity_summary(results) -> dict:
    """The demo's validity checks: each expected ordering, its margin, both CIs and a paired-difference CI."""
    from prism_eval.core.paired import paired_bootstrap

    def find(word: str):
        return next((r for r in results if word in r.captioner), None)

    checks = []
    for hi, lo in (("reference", "partial"), ("partial", "none"), ("reference", "wrong"), ("reference", "none")):
        a, b = find(hi), find(lo)
        if a is None or b is None:
            continue
        sa, sb = (next(iter(r.results["benchmarks"].values())) for r in (a, b))
        if sa["score"] is None or sb["score"] is None:
            continue
        qa, qb = _question_scores(a.out_dir), _question_scores(b.out_dir)
        common = sorted(set(qa) & set(qb))
        paired = paired_bootstrap([qa[q][0] for q in common], [qb[q][0] for q in common],
                                  clusters=[qa[q][1] for q in common], seed=0)
        lo_ci, hi_ci = (100 * x for x in paired.ci95)
        checks.append({"higher": hi, "lower": lo, "margin": round(sa["score"] - sb["score"], 2),
                       "ci_higher": [round(x, 2) for x in sa["ci95"]], "ci_lower": [round(x, 2) for x in sb["ci95"]],
                       "paired_diff_ci": [round(lo_ci, 2), round(hi_ci, 2)],
                       "holds": lo_ci > 0, "cis_disjoint": sa["ci95"][0] > sb["ci95"][1]})
    return {"checks": checks, "all_hold": bool(checks) and all(c["holds"] for c in checks)}


def _print_validity(summary: dict, console: Console) -> None:
    table = Table(title="validity checks (points; 95% CIs by image bootstrap)")
    for col in ("expected", "margin", "paired diff CI", "CI higher", "CI lower", "CIs disjoint"):
        table.add_column(col)
    for c in summary["checks"]:
        table.add_row(f"{c['higher']} > {c['lower']}", f"{c['margin']:+.1f}",
                      f"[{c['paired_diff_ci'][0]:+.1f}, {c['paired_diff_ci'][1]:+.1f}]",
                      f"[{c['ci_higher'][0]:.1f}, {c['ci_higher'][1]:.1f}]",
                      f"[{c['ci_lower'][0]:.1f}, {c['ci_lower'][1]:.1f}]", "yes" if c["cis_disjoint"] else "no")
    console.print(table)
