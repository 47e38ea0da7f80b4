"""`prism-eval demo`: the embedded benchmark, five captioners, the built-in judge, a leaderboard.

The captioners are chosen so the metric's validity can be read off the table:
reference captions state every fact, partial ones half, wrong ones state wrong
facts, `none` states nothing, and a tiny random-weight VLM runs the real
captioning code path (its captions are noise, so it should sit near blind).
The command (prism_eval.cli.demo) runs them through the same path as
`prism-eval run`; this module prepares the inputs and judges the outcome.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from prism_eval.engines.cache_dir import models_dir, publish_dir
from prism_eval.runner.options import RunOptions
from prism_eval.runner.results import SAMPLES_FILE, RunRecord


@dataclass
class DemoInputs:
    benchmark: Path  # the demo's local JSONL benchmark
    captioners: list[str]


def prepare_demo(out: Path, seed: int = 0) -> DemoInputs:
    """Write the demo benchmark and its captions files under out/data, and build the tiny VLM once."""
    from prism_eval.demo import build_demo
    from prism_eval.engines.tiny import build_tiny_vlm

    data_dir = Path(out) / "data"
    build_demo(data_dir, seed=seed)
    tiny = publish_dir(models_dir() / "tiny-llava-demo", lambda tmp: build_tiny_vlm(tmp, arch="llava", seed=seed))
    captions = data_dir / "captions"
    captioners = [f"file:{captions / 'reference.jsonl'}", f"file:{captions / 'partial.jsonl'}",
                  f"file:{captions / 'wrong.jsonl'}", "none", f"hf:{tiny}"]
    return DemoInputs(data_dir / "demo.jsonl", captioners)


def demo_options(out: Path, *, judge: str, scoring: str, seed: int = 0, store: str | None = None,
                 limit: int | None = None, estimator: str = "argmax", length_curve: str | None = None
                 ) -> RunOptions:
    """The demo's settings: the caprl protocol, one greedy 48-token caption per image, its own store."""
    return RunOptions(judge=judge, protocol="caprl", scoring=scoring, estimator=estimator, num_captions=1,
                      limit=limit, seed=seed, caption_max_tokens=48, caption_temperature=0.0,
                      store=store or str(Path(out) / "store.sqlite"), length_curve=length_curve)


def _question_scores(run_dir: Path) -> dict[str, tuple[float, str]]:
    """Per question: the mean score over its captions, and its image (the bootstrap cluster)."""
    from prism_eval.runner.results import read_samples

    sums: dict[str, list] = {}
    for rec in read_samples(run_dir / SAMPLES_FILE):
        if rec.failed:
            continue
        entry = sums.setdefault(rec.question_id, [0.0, 0, rec.image])
        entry[0] += rec.score
        entry[1] += 1
    return {q: (total / n, image) for q, (total, n, image) in sums.items()}


def validity_summary(runs: list[tuple[str, Path, RunRecord]]) -> dict:
    """The demo's validity checks: each expected ordering, its margin, both CIs and a paired-difference CI.

    `runs`: (captioner spec, run folder, record) for each demo captioner.
    """
    from prism_eval.core.paired import paired_bootstrap

    def find(word: str):
        return next((r for r in runs if word in r[0]), None)

    checks = []
    for hi, lo in (("reference", "partial"), ("partial", "none"), ("reference", "wrong"), ("reference", "none")):
        a, b = find(hi), find(lo)
        if a is None or b is None:
            continue
        sa, sb = (next(iter(r[2].benchmarks.values())) for r in (a, b))
        if sa.score is None or sb.score is None:
            continue
        qa, qb = _question_scores(a[1]), _question_scores(b[1])
        common = sorted(set(qa) & set(qb))
        paired = paired_bootstrap([qa[q][0] for q in common], [qb[q][0] for q in common],
                                  clusters=[qa[q][1] for q in common], seed=0)
        lo_ci, hi_ci = (100 * x for x in paired.ci95)
        checks.append({"higher": hi, "lower": lo, "margin": round(sa.score - sb.score, 2),
                       "ci_higher": [round(x, 2) for x in sa.ci95], "ci_lower": [round(x, 2) for x in sb.ci95],
                       "paired_diff_ci": [round(lo_ci, 2), round(hi_ci, 2)],
                       "holds": lo_ci > 0, "cis_disjoint": sa.ci95[0] > sb.ci95[1]})
    return {"checks": checks, "all_hold": bool(checks) and all(c["holds"] for c in checks)}


def write_validity(summary: dict, out: Path) -> Path:
    path = Path(out) / "validity.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    return path
