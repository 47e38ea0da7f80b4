"""HFJudge.from_loaded and HFCaptioner.from_loaded: engines around weights already in memory, and the
captioner's token counts (what throughput benchmarks divide by)."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from prism_eval.core.protocols import get_protocol
from prism_eval.core.records import Sampling
from prism_eval.engines.hf import HFCaptioner, HFJudge, _generated_tokens


def _requests(n: int = 6):
    """Questions of the judge benchmark's workload: requests and the letters each shows."""
    from prism_eval.tools.bench_judge import make_workload

    protocol = get_protocol("caprl")
    wl = make_workload(n, 0, protocol)
    requests = [protocol.mcq_request(wl.captions[it.caption_index], it.question, it.shown) for it in wl.items]
    return requests, [list(it.shown.labels) for it in wl.items]


@pytest.fixture(scope="module")
def loaded_lm(tiny_lm_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_lm_dir), AutoTokenizer.from_pretrained(tiny_lm_dir)


def test_judge_from_loaded_scores_and_generates_as_the_loaded_judge(tiny_judge, loaded_lm):
    model, tokenizer = loaded_lm
    model.train()  # the caller's mode is kept: from_loaded must not switch it
    judge = HFJudge.from_loaded(model, tokenizer, spec="mem:tiny", identity={"weights": "test"}, batch_size=2)
    assert model.training
    model.eval()
    requests, letters = _requests()
    ours, theirs = judge.letter_logprobs(requests, letters), tiny_judge.letter_logprobs(requests, letters)
    assert [len(r) for r in ours] == [len(r) for r in theirs]
    assert [x for r in ours for x in r] == pytest.approx([x for r in theirs for x in r], abs=1e-4)
    greedy = Sampling(temperature=0.0, max_new_tokens=4)
    assert judge.generate(requests, greedy) == tiny_judge.generate(requests, greedy)
    fp = judge.fingerprint()
    assert fp["spec"] == "mem:tiny" and fp["weights"] == "test" and fp["dtype"] == "float32"
    assert judge.stats.tokens > 0 and judge.prefix_config.max_batch_rows == 2


def test_judge_from_loaded_names_live_weights_by_default(loaded_lm):
    judge = HFJudge.from_loaded(*loaded_lm, spec="live:step-3")
    assert judge.fingerprint()["live"] == "live:step-3"


def test_generated_tokens_stop_at_the_first_stop_token():
    new = torch.tensor([[5, 2, 0, 0], [5, 6, 7, 8], [9, 0, 2, 2]])
    assert _generated_tokens(new, 2) == 2 + 4 + 3
    assert _generated_tokens(new, [0, 2]) == 2 + 4 + 2
    assert _generated_tokens(new, None) == 12
    assert _generated_tokens(new[:, :0], 2) == 0


@pytest.fixture(scope="module")
def loaded_vlm(tiny_qwen_vl_dir):
    from transformers import AutoModelForImageTextToText

    from prism_eval.engines.hf import load_vlm_processor

    return AutoModelForImageTextToText.from_pretrained(tiny_qwen_vl_dir).eval(), load_vlm_processor(
        str(tiny_qwen_vl_dir))


def test_captioner_from_loaded_captions_as_the_loaded_captioner_and_counts_tokens(tiny_qwen_vl_dir, loaded_vlm):
    model, processor = loaded_vlm
    cap = HFCaptioner.from_loaded(model, processor, spec="mem:vl", identity={"weights": "test"}, batch_size=2)
    images = [[Image.new("RGB", (56, 56), (200, 10, 10))], [Image.new("RGB", (84, 56), (0, 0, 250))],
              [Image.new("RGB", (56, 56), "green")]]
    prompts = ["Describe the image."] * 3
    greedy = Sampling(temperature=0.0, max_new_tokens=5)
    ours = cap.caption(images, prompts, 1, greedy)
    assert ours == HFCaptioner(str(tiny_qwen_vl_dir), batch_size=2).caption(images, prompts, 1, greedy)
    assert cap.fingerprint()["weights"] == "test"
    # two generate calls (batch 2 over 3 images); prompt tokens are the processor's unpadded ones
    texts = [cap.render(1, p) for p in prompts]
    prompt_tokens = sum(int(processor(text=[t], images=im, return_tensors="pt")["attention_mask"].sum())
                        for t, im in zip(texts, images))
    assert cap.stats.forward_calls == 2
    assert 3 <= cap.generated_tokens <= 3 * 5
    assert cap.stats.tokens == prompt_tokens + cap.generated_tokens
    assert cap.stats.padded_tokens >= cap.stats.tokens
