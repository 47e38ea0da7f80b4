"""Shared-prefix scoring returns what scoring each full prompt on its own returns."""
from __future__ import annotations

import random

import pytest
import torch

from prism_eval.core.records import JudgeRequest
from prism_eval.engines.prefix import PrefixConfig, PrefixScorer

TOL = 1e-4  # fp32, absolute, on log-probabilities


def _reference(model, seqs, reads):
    """Each sequence alone, unpadded, batch of one, no cache."""
    out = []
    for seq, rs in zip(seqs, reads):
        with torch.inference_mode():
            logp = model(input_ids=torch.tensor([seq])).logits[0].float().log_softmax(-1)
        out.append([[logp[p, c].item() for c in cands] for p, cands in rs])
    return out


def _max_diff(a, b):
    return max(abs(x - y) for ra, rb in zip(a, b) for sa, sb in zip(ra, rb) for x, y in zip(sa, sb))


def _workload(vocab: int, seed: int = 0):
    """Captions of different lengths, each with questions of different lengths; a lone
    question; duplicates; a sequence that is a prefix of another; option continuations
    where one option is a prefix of another."""
    rng = random.Random(seed)
    header = [rng.randrange(5, vocab) for _ in range(30)]
    seqs, reads = [], []
    for cap_len, n_q in ((40, 4), (75, 1), (12, 3), (60, 2)):
        caption = header + [rng.randrange(5, vocab) for _ in range(cap_len)]
        for _ in range(n_q):
            question = [rng.randrange(5, vocab) for _ in range(rng.randrange(3, 25))]
            prompt = caption + question
            letters = rng.sample(range(5, vocab), 5)
            seqs.append(prompt)
            reads.append([(len(prompt) - 1, letters)])
            for cont_len in (1, 4, 2):
                cont = [rng.randrange(5, vocab) for _ in range(cont_len)]
                seq = prompt + cont
                seqs.append(seq)
                reads.append([(len(prompt) - 1 + j, (t,)) for j, t in enumerate(cont)])
            # an option that extends the previous one (its sequence has the previous as a prefix)
            seqs.append(seq + [rng.randrange(5, vocab)])
            reads.append([(len(prompt) - 1 + j, (t,)) for j, t in enumerate(seq[len(prompt):] + seqs[-1][-1:])])
    seqs.append(list(seqs[0]))  # an exact duplicate
    reads.append(list(reads[0]))
    unrelated = [rng.randrange(5, vocab) for _ in range(9)]  # shares nothing
    seqs.append(unrelated)
    reads.append([(0, (7, 8)), (8, (9,))])
    return seqs, reads


CONFIGS = {
    "default": PrefixConfig(),
    "one-row-batches": PrefixConfig(max_batch_rows=1),
    "two-rows-small-budget": PrefixConfig(max_batch_rows=2, max_batch_tokens=48),
    "share-every-common-token": PrefixConfig(min_shared_tokens=1),
    "no-sharing": PrefixConfig(share_prefix=False, max_batch_rows=7),
    "many-small-trees": PrefixConfig(max_tree_tokens=150),
    "tight-cache-budget": PrefixConfig(max_cache_tokens=200),
    "nonzero-pad-id": PrefixConfig(pad_id=11, max_batch_rows=5),
}


@pytest.fixture(scope="module")
def tiny_model(tiny_judge):
    return tiny_judge.model


@pytest.fixture(scope="module")
def workload(tiny_judge):
    return _workload(len(tiny_judge.tokenizer))


@pytest.fixture(scope="module")
def reference(tiny_model, workload):
    return _reference(tiny_model, *workload)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_shared_prefix_matches_full_prompts(tiny_model, workload, reference, name):
    seqs, reads = workload
    got = PrefixScorer(tiny_model, CONFIGS[name]).score(seqs, reads)
    assert [len(r) for r in got] == [len(r) for r in reads]
    assert [[len(x) for x in r] for r in got] == [[len(c) for _, c in r] for r in reads]
    assert _max_diff(got, reference) < TOL


def test_request_order_does_not_matter(tiny_model, workload, reference):
    seqs, reads = workload
    perm = list(range(len(seqs)))
    random.Random(3).shuffle(perm)
    got = PrefixScorer(tiny_model, PrefixConfig(max_batch_rows=3)).score([seqs[i] for i in perm],
                                                                          [reads[i] for i in perm])
    assert _max_diff(got, [reference[i] for i in perm]) < TOL


def test_each_shared_prefix_is_computed_once(tiny_model, workload):
    seqs, reads = workload
    scorer = PrefixScorer(tiny_model, PrefixConfig(min_shared_tokens=1))
    scorer.score(seqs, reads)
    needed = [s[:max(p for p, _ in rs) + 1] for s, rs in zip(seqs, reads)]
    distinct_prefixes = {tuple(s[:k + 1]) for s in needed for k in range(len(s))}
    assert scorer.stats.tokens == len(distinct_prefixes)
    plain = PrefixScorer(tiny_model, PrefixConfig(share_prefix=False))
    plain.score(seqs, reads)
    assert plain.stats.tokens == sum(len(s) for s in {tuple(s) for s in needed})
    assert scorer.stats.tokens < plain.stats.tokens / 2


def test_read_outside_the_sequence_is_an_error(tiny_model):
    with pytest.raises(ValueError, match="position 5 outside its 3 tokens"):
        PrefixScorer(tiny_model, PrefixConfig()).score([[5, 6, 7]], [[(5, (1,))]])


def _requests(n_captions: int = 3):
    caps = ["A red car is parked next to a blue bicycle on a quiet street. " * k for k in (1, 4, 2)][:n_captions]
    qs = ["What color is the car?\n- A) red\n- B) blue", "What is next to the car?\n- A) a bicycle\n- B) a dog",
          "Where is it?\n- A) on a street\n- B) in a park\n- C) at sea"]
    return [JudgeRequest(messages=(("user", f"Caption: {c}\nQuestion: {q}"),), prefill="The answer is",
                         chat_format=fmt)
            for c in caps for q in qs for fmt in ("chatml", "model")]


def _judge_reference(judge, requests, letters, conts):
    lp, ol = [], []
    for req, ls, cs in zip(requests, letters, conts):
        prompt = judge.encode_prompt(req)
        with torch.inference_mode():
            last = judge.model(input_ids=torch.tensor([prompt])).logits[0, -1].float().log_softmax(-1)
        lp.append([torch.logsumexp(last[list(judge.letter_token_ids(x))], 0).item() for x in ls])
        row = []
        for c in cs:
            cids = judge.tokenizer.encode(c, add_special_tokens=False)
            with torch.inference_mode():
                lo = judge.model(input_ids=torch.tensor([prompt + cids])).logits[0].float().log_softmax(-1)
            row.append((sum(lo[len(prompt) - 1 + k, t].item() for k, t in enumerate(cids)), len(cids)))
        ol.append(row)
    return lp, ol


def _check_judge(judge, requests):
    letters = [["A", "B", "C"]] * len(requests)
    conts = [[" red", " a blue bicycle", " red car"]] * len(requests)
    ref_lp, ref_ol = _judge_reference(judge, requests, letters, conts)
    lp = judge.letter_logprobs(requests, letters)
    ol = judge.option_logliks(requests, conts)
    assert max(abs(a - b) for x, y in zip(lp, ref_lp) for a, b in zip(x, y)) < TOL
    assert all(n == m for x, y in zip(ol, ref_ol) for (_, n), (_, m) in zip(x, y))
    assert max(abs(a - b) for x, y in zip(ol, ref_ol) for (a, _), (b, _) in zip(x, y)) < TOL


def test_tiny_judge_capabilities_match_full_prompts(tiny_judge):
    _check_judge(tiny_judge, _requests())


def test_builtin_judge_capabilities_match_full_prompts(builtin_judge):
    assert len(builtin_judge.letter_token_ids("C")) == 2  # "C" and " C" are both single tokens
    requests = _requests(1)
    _check_judge(builtin_judge, [requests[0], requests[2], requests[5]])


def test_shared_prefix_on_a_qwen2_architecture(tmp_path):
    from prism_eval.engines.hf import HFJudge
    from prism_eval.engines.tiny import build_tiny_lm

    judge = HFJudge(str(build_tiny_lm(tmp_path / "qwen2", arch="qwen2", seed=2)), batch_size=3)
    seqs, reads = _workload(len(judge.tokenizer), seed=5)
    got = judge.scorer.score(seqs, reads)
    assert _max_diff(got, _reference(judge.model, seqs, reads)) < TOL


def test_instruction_header_is_kept_across_calls(tiny_model, workload, reference):
    """A second call that starts with the same header computes no header token again, same results."""
    seqs, reads = workload
    head = 30  # the workload's common header (see _workload)
    shared = [i for i, s in enumerate(seqs) if s[:head] == seqs[0][:head]]
    first, second = shared[: len(shared) // 2], shared[len(shared) // 2:]
    scorer = PrefixScorer(tiny_model, PrefixConfig())
    got1 = scorer.score([seqs[i] for i in first], [reads[i] for i in first])
    fresh = PrefixScorer(tiny_model, PrefixConfig(keep_root_tokens=0))
    fresh.score([seqs[i] for i in second], [reads[i] for i in second])
    before = scorer.stats.tokens
    got2 = scorer.score([seqs[i] for i in second], [reads[i] for i in second])
    assert scorer.stats.tokens - before == fresh.stats.tokens - head
    assert _max_diff(got1 + got2, [reference[i] for i in first + second]) < TOL


def test_part_of_the_kept_header_is_reused(tiny_model, workload):
    seqs, reads = workload
    scorer = PrefixScorer(tiny_model, PrefixConfig(min_shared_tokens=8))
    scorer.score(seqs[:8], reads[:8])  # all start with the 30-token header
    partial = [seqs[0][:12] + [7] * 20]
    part_reads = [[(31, (1, 2))]]
    before = scorer.stats.tokens
    got = scorer.score(partial, part_reads)
    assert scorer.stats.tokens - before == 20  # the first 12 tokens came from the kept header
    assert _max_diff(got, _reference(tiny_model, partial, part_reads)) < TOL
    unrelated = [[9] * 10]
    before = scorer.stats.tokens
    got = scorer.score(unrelated, [[(9, (3,))]])
    assert scorer.stats.tokens - before == 10
    assert _max_diff(got, _reference(tiny_model, unrelated, [[(9, (3,))]])) < TOL


def test_plain_matmul_attention_path_matches(tiny_model, workload, reference, monkeypatch):
    """The path used off-CPU (no fused kernel with log-sum-exp) gives the same results."""
    from prism_eval.engines import prefix_attention

    monkeypatch.setattr(prefix_attention, "_flash_cpu", lambda: None)
    seqs, reads = workload
    got = PrefixScorer(tiny_model, PrefixConfig(max_batch_rows=5)).score(seqs, reads)
    assert _max_diff(got, reference) < TOL


def test_models_with_sliding_window_layers_run_every_prompt_whole(tiny_model, workload, reference, monkeypatch):
    monkeypatch.setattr(tiny_model.config, "layer_types", ["sliding_attention"] * tiny_model.config.num_hidden_layers,
                        raising=False)
    with pytest.warns(UserWarning, match="shared-prefix scoring is off for this judge .*sliding_attention"):
        scorer = PrefixScorer(tiny_model, PrefixConfig())
    assert not scorer.share
    seqs, reads = workload
    assert _max_diff(scorer.score(seqs, reads), reference) < TOL
    assert scorer.stats.tokens == sum(len(s) for s in {tuple(s[:max(p for p, _ in rs) + 1])
                                                       for s, rs in zip(seqs, reads)})


def test_bfloat16_judge_matches_its_own_full_prompts(tmp_path):
    """Half-precision weights: the fused kernel gets bf16 inputs and an additive bf16 mask."""
    from prism_eval.engines.hf import HFJudge
    from prism_eval.engines.tiny import build_tiny_lm

    judge = HFJudge(str(build_tiny_lm(tmp_path / "lm", seed=4)), dtype="bfloat16", batch_size=4)
    assert judge.model.dtype == torch.bfloat16
    seqs, reads = _workload(len(judge.tokenizer), seed=6)
    got = judge.scorer.score(seqs, reads)
    assert _max_diff(got, _reference(judge.model, seqs, reads)) < 0.01  # bf16 rounding (measured 2e-3)
