"""Captions longer than the judge's context are cut from their end, counted, and the cut prompt fits.

The judge is a tiny local model whose config says 192 positions; a captions file
gives one image a caption of a few thousand tokens and the other a short one.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cli.test_bad_input import _noise, _png, mcq, run_cli, write_jsonl

CONTEXT = 192
LONG = " ".join(f"The sign number {i} on the left wall is painted in a dark shade of red." for i in range(300))


@pytest.fixture(scope="module")
def small_judge(tiny_lm_dir, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("small-judge") / "judge"
    shutil.copytree(tiny_lm_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["max_position_embeddings"] = CONTEXT
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture
def bench(tmp_path) -> Path:
    (tmp_path / "img").mkdir()
    for i in range(2):
        (tmp_path / "img" / f"{i}.png").write_bytes(_png(_noise((40 + i, 32))))
    return write_jsonl(tmp_path / "bench.jsonl", [mcq(0, "img/0.png"), mcq(1, "img/1.png")])


def test_a_caption_over_the_judge_context_is_cut_and_counted(tmp_path, bench, small_judge):
    caps = write_jsonl(tmp_path / "caps.jsonl", [{"image": "img/0.png", "caption": LONG},
                                                 {"image": "img/1.png", "caption": "A small grey picture."}])
    out = tmp_path / "out"
    args = ["run", "-b", str(bench), "-c", f"file:{caps}", "-j", f"hf:{small_judge}", "--store",
            str(tmp_path / "s.sqlite"), "-o", str(out)]
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1 caption(s) of bench were longer than the judge's context and were cut from the end" in proc.stderr
    result = json.loads((out / "results.json").read_text())["benchmarks"]["bench"]
    assert result["truncated"] == 1 and result["failed"] == 0
    samples = {json.loads(line)["image"]: json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()}
    cut = samples["img/0.png"]["caption"]
    assert LONG.startswith(cut[:200]) and len(cut) < len(LONG) / 10, "the caption's beginning is kept"
    assert samples["img/1.png"]["caption"] == "A small grey picture."
    # the prompt the judge read, rebuilt from what samples.jsonl records, fits its 192 positions
    from transformers import AutoTokenizer

    from prism_eval.benchmarks import load_jsonl_benchmark
    from prism_eval.core.protocols import get_protocol
    from prism_eval.core.utility import UtilityConfig
    from prism_eval.engines.judge_inputs import encode, prompt_ids
    from prism_eval.runner.fit import _requests

    tok = AutoTokenizer.from_pretrained(small_judge)
    question = load_jsonl_benchmark(bench).samples[0].questions[0]
    config = UtilityConfig(scoring="option-loglik", estimator="expected")
    request, conts = _requests(cut, question, get_protocol("caprl"), config)
    assert len(prompt_ids(tok, request)) + max(len(encode(tok, c)) for c in conts) <= CONTEXT
    rerun = run_cli(args, cwd=tmp_path)  # cut the same way again: every judge answer comes from the store
    assert rerun.returncode == 0 and "(0 captioner calls, 0 judge calls)" in rerun.stderr, rerun.stderr[-2000:]


def test_captions_that_fit_need_no_tokenizer(bench):
    from prism_eval.benchmarks import load_jsonl_benchmark
    from prism_eval.core.protocols import get_protocol
    from prism_eval.core.utility import CaptionSet, UtilityConfig
    from prism_eval.runner.fit import JudgeWindow, fit_captions

    sample = load_jsonl_benchmark(bench).samples[0]
    window = JudgeWindow(context=4096, folder="/nonexistent")  # loading a tokenizer from here would fail
    sets = [CaptionSet(sample, ["A grey picture.", "Noise."])]
    fitted, cut = fit_captions(sets, get_protocol("caprl"), UtilityConfig(), window)
    assert cut == 0 and fitted[0].captions == sets[0].captions and window.tokenizer is None


def test_the_window_comes_from_the_judge_files(small_judge, tiny_lm_dir):
    from prism_eval.runner.fit import judge_window, read_context

    assert read_context(small_judge) == CONTEXT
    window = judge_window(f"hf:{small_judge}")
    assert window is not None and window.context == CONTEXT and window.tokenizer is None
    assert judge_window("openai:m@http://127.0.0.1:1/v1") is None  # unknown: captions are sent whole
