"""A Qwen2.5-VL checkpoint (CapRL-Eval-3B's architecture) as a text-only judge: same logits as the full model."""
from __future__ import annotations

import torch

from prism_eval.core.records import JudgeRequest
from prism_eval.engines import judge_inputs as ji
from prism_eval.engines.hf import HFJudge


def test_vision_language_checkpoint_judges_with_its_language_model(tiny_qwen_vl_dir):
    from transformers import AutoModelForImageTextToText

    judge = HFJudge(str(tiny_qwen_vl_dir))
    assert type(judge.model).__name__ == "Qwen2ForCausalLM"  # no vision tower in memory
    full = AutoModelForImageTextToText.from_pretrained(str(tiny_qwen_vl_dir)).eval()
    request = JudgeRequest(messages=(("user", "Caption: a red bus.\nQuestion: what colour?"),),
                           prefill="The answer is")
    ids = judge.encode_prompt(request)
    with torch.no_grad():
        logits = full(input_ids=torch.tensor([ids])).logits[0, -1].float()
    expected = torch.log_softmax(logits, dim=-1)
    letters = ["A", "B", "C"]
    got = judge.letter_logprobs([request], [letters])[0]
    want = [ji.logsumexp([expected[i].item() for i in judge.letter_token_ids(L)]) for L in letters]
    assert max(abs(a - b) for a, b in zip(got, want)) < 1e-5
    # option log-likelihoods through the shared-prefix scorer agree with the full model too
    conts = [" red", " blue"]
    scored = judge.option_logliks([request], [conts])[0]
    for cont, (total, n) in zip(conts, scored):
        cids = ji.continuation_ids(judge.tokenizer, cont)
        with torch.no_grad():
            lp = torch.log_softmax(full(input_ids=torch.tensor([ids + cids])).logits[0].float(), dim=-1)
        ref = sum(lp[len(ids) - 1 + j, t].item() for j, t in enumerate(cids))
        assert n == len(cids) and abs(total - ref) < 1e-4
