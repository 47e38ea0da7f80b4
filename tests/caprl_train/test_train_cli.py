"""The `caprl-train train` command: flags and config files, GRPOConfig mapping, a LoRA run end to end."""
import json

import pytest
from click.testing import CliRunner

from caprl_train.cli import main
from caprl_train.train import GRPOSettings, TrainConfig, build_grpo_config


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_print_config_merges_config_file_and_flags(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({
        "model": "org/some-vlm", "grpo": {"learning_rate": 2e-6, "num_generations": 4},
        "reward": {"judge": "openai:judge@http://127.0.0.1:9/v1", "scoring": "generate", "estimator": "sampled"},
        "lora": {"target_modules": ["q_proj"]}}))
    res = invoke("train", "--config", tmp_path / "c.json", "--data", "d.jsonl", "--num-generations", 6,
                 "--lora", "--grpo-arg", "top_k=5", "--grpo-arg", "chat_template_kwargs={\"x\": 1}",
                 "--questions-per-caption", 0, "--judge-temperature", 0.6, "--print-config")
    assert res.exit_code == 0, res.output
    cfg = json.loads(res.output)
    assert cfg["model"] == "org/some-vlm" and cfg["data"]["source"] == "d.jsonl"
    assert cfg["grpo"]["learning_rate"] == 2e-6 and cfg["grpo"]["num_generations"] == 6  # the flag wins
    assert cfg["grpo"]["extra"] == {"top_k": 5, "chat_template_kwargs": {"x": 1}}
    assert cfg["reward"]["judge"] == "openai:judge@http://127.0.0.1:9/v1"
    assert cfg["reward"]["questions_per_caption"] is None and cfg["reward"]["temperature"] == 0.6
    assert cfg["lora"] == {**cfg["lora"], "enabled": True, "target_modules": ["q_proj"]}


@pytest.mark.parametrize("args,message", [
    ((), "--data is required"),
    (("--data", "d.jsonl", "--eval-steps", "5"), "--eval-steps needs at least one --eval-benchmark"),
    (("--data", "d.jsonl", "--grpo-arg", "novalue"), "expected KEY=VALUE"),
    (("--data", "d.jsonl", "--scale-rewards", "sometimes"), "'sometimes' is not one of"),
])
def test_bad_train_flags_are_one_line_errors(args, message):
    res = CliRunner().invoke(main, ["train", *args, "--print-config"])
    assert res.exit_code == 2 and message in res.output


def test_grpo_config_mapping_and_passthrough(tmp_path):
    cfg = TrainConfig(output_dir=str(tmp_path), grpo=GRPOSettings(
        num_generations=4, per_device_train_batch_size=4, gradient_accumulation_steps=2, beta=0.04,
        loss_type="grpo", scale_rewards="none", use_vllm=True, vllm_mode="server",
        vllm_server_base_url="http://127.0.0.1:8000", extra={"top_k": 7}))
    g = build_grpo_config(cfg)
    assert (g.num_generations, g.beta, g.loss_type, g.scale_rewards, g.top_k) == (4, 0.04, "grpo", "none", 7)
    assert (g.use_vllm, g.vllm_mode, g.vllm_server_base_url) == (True, "server", "http://127.0.0.1:8000")
    assert g.learning_rate == 1e-6 and g.temperature == 1.0 and g.max_completion_length == 4096
    assert g.remove_unused_columns is False and g.generation_batch_size == 8
    cfg.grpo.extra = {"not_a_field": 1}
    with pytest.raises(ValueError, match="not_a_field is not a GRPOConfig field"):
        build_grpo_config(cfg)


def test_lora_training_through_the_cli_saves_a_merged_policy(tmp_path, tiny_qwen_vl_dir, tiny_lm_dir):
    from PIL import Image

    from prism_eval.core.records import Sampling
    from prism_eval.engines.registry import load_captioner

    for i, colour in enumerate(("red", "blue")):
        Image.new("RGB", (48, 48), colour).save(tmp_path / f"{i}.png")
    rows = [{"id": f"q{i}", "image": f"{i}.png", "question": "Which colour?", "options": ["red", "blue"],
             "answer": "AB"[i]} for i in range(2)]
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    res = invoke("train", "--model", tiny_qwen_vl_dir, "--data", tmp_path / "qa.jsonl", "--image-size", 56,
                 "--output-dir", out, "--num-generations", 2, "--per-device-train-batch-size", 4,
                 "--gradient-accumulation-steps", 1, "--max-completion-length", 8, "--max-steps", 2,
                 "--no-gradient-checkpointing", "--save-steps", 0, "--learning-rate", 1e-2,
                 "--judge", f"hf:{tiny_lm_dir}", "--questions-per-caption", 1,
                 "--lora", "--lora-target-modules", "q_proj,v_proj")
    assert res.exit_code == 0, res.output
    assert "trained 2 steps" in res.output and f"hf:{out}" in res.output
    assert (out / "adapter" / "adapter_config.json").is_file()
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()
    captioner = load_captioner(f"hf:{out}")
    texts = captioner.caption([[Image.new("RGB", (48, 48), "red")]], ["Please describe this image in detail."], 1,
                              Sampling(max_new_tokens=6))
    assert len(texts) == 1 and isinstance(texts[0][0], str)


def test_a_missing_policy_is_a_one_line_error(tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "0.png")
    (tmp_path / "qa.jsonl").write_text(json.dumps({"id": "q", "image": "0.png", "question": "Q?",
                                                   "options": ["a", "b"], "answer": "A"}) + "\n")
    res = CliRunner().invoke(main, ["train", "--data", str(tmp_path / "qa.jsonl"), "--model", str(tmp_path / "none"),
                                    "--output-dir", str(tmp_path / "out")])
    assert res.exit_code == 1
    assert res.output.startswith(f"Error: --model {tmp_path / 'none'}: no such model folder ")  # before any load
    assert res.output.count("\n") == 1
