"""Add the diagnostics a run now records to fixture runs (test_fixture.build_runs), computed from their samples.

Why: the report must show what results.json and samples.jsonl hold, so the
fixture derives every diagnostic from the samples it wrote (outcome labels from
each answer, shares as the pipeline weighs them: mean over questions of the mean
over answers) and the report tests compare the page with these files.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

OUTCOMES = ("right", "omission", "hallucination", "unanswered")


def _label(s: dict) -> str | None:
    if not s["options"] or s["status"] == "failed":
        return None
    if s["status"] == "unanswered":
        return "unanswered"
    if s["correct"]:
        return "right"
    return "omission" if int(hashlib.sha1(f"{s['question_id']}{s['caption']}".encode()).hexdigest(), 16) % 3 == 0 \
        else "hallucination"


def _shares(samples: list[dict]) -> dict[str, float] | None:
    per_q: dict[str, list[str]] = {}
    for s in samples:
        if s["outcome"] is not None:
            per_q.setdefault(s["question_id"], []).append(s["outcome"])
    if not per_q:
        return None
    out = {k: 100 * sum(v.count(k) / len(v) for v in per_q.values()) / len(per_q) for k in OUTCOMES}
    return {**out, "n": len(per_q)}


def add_diagnostics(dirs: list[Path], *, curves: dict[str, tuple[int, ...]] | None = None,
                    vision: bool = True) -> None:
    """Write outcomes into samples.jsonl and the per-benchmark diagnostics into results.json.

    curves: run folder name -> the length budgets its by_length holds (a run not named has no curve);
    vision: set vision_required on every run (as when the blind baseline ran in the same invocation).
    """
    curves = curves or {}
    for d in dirs:
        samples = [json.loads(line) for line in (d / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
        for s in samples:
            s["outcome"] = _label(s)
        (d / "samples.jsonl").write_text("".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples),
                                         encoding="utf-8")
        res = json.loads((d / "results.json").read_text())
        for name, b in res["benchmarks"].items():
            shares = _shares([s for s in samples if s["benchmark"] == name])
            b["outcomes"] = shares
            b["omission"] = None if shares is None else shares["omission"]
            b["hallucination"] = None if shares is None else shares["hallucination"]
            b["length_unit"] = "judge tokens"
            ks = curves.get(d.name, ())
            b["by_length"] = {**{str(k): b["score"] * k / (k + 24) for k in ks}, "full": b["score"]} if ks else {}
            if vision:
                n = max(1, b["n"] * 2 // 3)
                b["vision_required"] = {"score": max(0.0, b["score"] - 7.5), "n": n}
        (d / "results.json").write_text(json.dumps(res, indent=2), encoding="utf-8")
