"""The judge section: `bench judge`'s workload and modes on a random-weight Qwen2.5-3B, plus FLOP rates.

The modes, workload, interleaving and agreement are `prism_eval.tools.bench_judge`'s own
(run_judge_bench); this adds the device's view: FLOP rate per mode against
the measured matrix-product ceiling and the datasheet peak, peak device memory,
and a check of the letter-logprob decisions against the first step of greedy
generation on the same model. A random model's free text after "The answer
is" is almost never a letter, so comparing against its generated text decides
nothing; the first generation step's log-probs over the shown letters compare
the two code paths (shared-prefix scoring against generate's own forward)
decision by decision and in value.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from prism_eval.tools.gpu_bench.measure import sig, text_flops


def make_judge(built: Any, tokenizer: Any, batch_size: int, token_budget: int):
    from prism_eval.engines.hf import HFJudge

    return HFJudge.from_loaded(built.model, tokenizer, spec=f"random-weights:{built.name}",
                               identity=built.identity(), batch_size=batch_size, token_budget=token_budget)


def first_step_letter_logprobs(judge: Any, requests: Sequence[Any], letters: Sequence[Sequence[str]]
                               ) -> tuple[list[list[float]], list[int]]:
    """Per request, each letter's log-prob at generation's first step (greedy generate, left-padded
    batches as HFJudge.generate builds them), and the unrestricted greedy first token."""
    import torch

    from prism_eval.engines import judge_inputs as ji
    from prism_eval.engines.hf import _generation_config, _only_generation_config, _quiet

    prompts = [judge.encode_prompt(r) for r in requests]
    gen_cfg = _generation_config(judge.model, judge.tokenizer, 1)
    gen_cfg.output_logits, gen_cfg.return_dict_in_generate = True, True
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    out: list[list[float]] = [[] for _ in prompts]
    first: list[int] = [0] * len(prompts)
    for start in range(0, len(order), judge.batch_size):
        idx = order[start:start + judge.batch_size]
        width = max(len(prompts[i]) for i in idx)
        ids = torch.full((len(idx), width), judge.pad_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for r, i in enumerate(idx):
            ids[r, width - len(prompts[i]):] = torch.tensor(prompts[i])
            mask[r, width - len(prompts[i]):] = 1
        with torch.inference_mode(), _quiet(), _only_generation_config(judge.model, gen_cfg):
            res = judge.model.generate(input_ids=ids.to(judge.model.device), attention_mask=mask.to(judge.model.device),
                                       generation_config=gen_cfg)
        logp = torch.log_softmax(res.logits[0].float(), dim=-1).cpu()
        for r, i in enumerate(idx):
            first[i] = int(res.sequences[r, width])
            out[i] = [ji.logsumexp([float(logp[r, t]) for t in judge.letter_token_ids(letter)])
                      for letter in letters[i]]
    return out, first


def letter_vs_generation(judge: Any, n_questions: int, seed: int) -> dict[str, Any]:
    """Letter-logprob (shared-prefix scoring) against generate's first step, on the bench workload."""
    from prism_eval.core.protocols import get_protocol
    from prism_eval.tools.bench_judge import _argmax_letter, make_workload

    protocol = get_protocol("caprl")
    wl = make_workload(n_questions, seed, protocol)
    requests = [protocol.mcq_request(wl.captions[it.caption_index], it.question, it.shown) for it in wl.items]
    letters = [list(it.shown.labels) for it in wl.items]
    scored = judge.letter_logprobs(requests, letters)
    generated, first = first_step_letter_logprobs(judge, requests, letters)
    agree = sum(_argmax_letter(a, ls) == _argmax_letter(b, ls) for a, b, ls in zip(scored, generated, letters))
    diffs = [abs(x - y) for a, b in zip(scored, generated) for x, y in zip(a, b) if math.isfinite(x - y)]
    gaps = []  # how far apart the top two letters are in the scoring path (random models: near ties)
    for a in scored:
        top = sorted(a, reverse=True)
        gaps.append(top[0] - top[1])
    letter_ids = {t for ls in letters for letter in ls for t in judge.letter_token_ids(letter)}
    near = [g for g, a, b, ls in zip(gaps, scored, generated, letters)
            if _argmax_letter(a, ls) != _argmax_letter(b, ls)]
    return {
        "questions": len(requests),
        "agreement": round(agree / len(requests), 4),
        "max_abs_logprob_diff": float(f"{max(diffs):.4g}") if diffs else None,
        "mean_abs_logprob_diff": float(f"{sum(diffs) / len(diffs):.4g}") if diffs else None,
        "median_top2_gap": round(sorted(gaps)[len(gaps) // 2], 5) if gaps else None,
        "largest_gap_among_disagreements": round(max(near), 5) if near else None,
        "greedy_first_token_is_a_letter": round(sum(t in letter_ids for t in first) / len(first), 4),
    }


def run_judge_section(built: Any, judge: Any, *, device: str, questions: int, rounds: int, seed: int,
                      agreement_questions: int,
                      peak_tflops: float | None, matmul_tflops: float | None, memory: Callable[[], Any],
                      log: Callable[[str], None]) -> dict[str, Any]:
    from prism_eval.tools.bench_judge import run_judge_bench

    peak_batch = 32 if device.startswith("cuda") else 4
    result = run_judge_bench(judge, questions, seed, rounds=rounds, warmup=min(16, questions),
                             peak_batch=peak_batch, peak_seq_len=512, log=log, memory=memory)
    result["memory_kind"] = getattr(memory, "kind", "rss")
    result["settings"] = {"batch_size": judge.batch_size, "token_budget": judge.prefix_config.max_batch_tokens,
                          "attn_implementation": built.attn_implementation, "dtype": str(built.model.dtype)}
    for mode in result["modes"].values():
        if not mode.get("model_tokens"):
            continue
        rate = text_flops(built.body_params, mode["model_tokens"]) / mode["seconds"] / 1e12
        mode["tflops_per_s"] = sig(rate)
        mode["fraction_of_matmul_ceiling"] = sig(rate / matmul_tflops) if matmul_tflops else None
        mode["fraction_of_datasheet_peak"] = sig(rate / peak_tflops) if peak_tflops else None
    pf = result.get("peak_forward")
    if pf:
        pf["tflops_per_s"] = sig(text_flops(built.body_params, 1) * pf["tokens_per_s"] / 1e12)
    log("letter-logprob against generation's first step")
    result["letter_vs_generation"] = letter_vs_generation(judge, min(agreement_questions, questions), seed)
    return result
