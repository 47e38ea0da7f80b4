"""Run inside .venv-lmms: score cases with lmms-eval's own functions and print the scores as JSON.

Input (stdin): a JSON list of cases {"kind", "pred", "target" | "targets", "options"}.
Output (stdout): a JSON list of floats, one per case (null where lmms-eval's
answer is random, i.e. MMMU's parser found nothing and picked a letter).
tests/test_lmms_agreement.py compares them with prism_eval.core.metrics.
"""
from __future__ import annotations

import json
import random
import sys


def main() -> None:
    from lmms_eval.api.metrics import anls
    from lmms_eval.tasks.chartqa.utils import relaxed_correctness
    from lmms_eval.tasks.mmmu.utils import (
        eval_multi_choice,
        eval_open,
        get_multi_choice_info,
        parse_multi_choice_response,
        parse_open_response,
    )
    from lmms_eval.tasks.mmstar.utils import exact_match as mmstar_exact_match

    cases = json.load(sys.stdin)
    out: list[float | None] = []
    for case in cases:
        kind, pred = case["kind"], case["pred"]
        if kind == "relaxed":
            out.append(1.0 if relaxed_correctness(pred, case["target"]) else 0.0)
        elif kind == "anls":
            out.append(float(anls(case["targets"], [pred])["anls"]))
        elif kind == "mmstar":
            out.append(float(mmstar_exact_match(pred, case["target"])))
        elif kind == "mmmu_mc":
            index2ans, choices = get_multi_choice_info(case["options"])
            # MMMU picks a random letter when nothing parses: detect that by parsing twice with different seeds
            picks = set()
            for seed in (0, 1, 2, 3):
                random.seed(seed)
                picks.add(parse_multi_choice_response(pred, choices, index2ans))
            if len(picks) > 1:
                out.append(None)
            else:
                out.append(1.0 if eval_multi_choice(case["target"], picks.pop()) else 0.0)
        elif kind == "mmmu_open":
            gold = case["targets"] if len(case["targets"]) > 1 else case["targets"][0]
            out.append(1.0 if eval_open(gold, parse_open_response(pred)) else 0.0)
        else:
            raise SystemExit(f"unknown case kind {kind!r}")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
