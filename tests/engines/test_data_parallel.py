"""`--data-parallel N`: engine replicas in their own processes, work split and merged deterministically.

The wrapper is engine-agnostic (on a GPU machine each replica is a vLLM engine
on its own GPU group); here the replicas are the tiny transformers judge and
captioner, which run on CPU in seconds. Results must equal one engine's, in order.
"""
from __future__ import annotations

import functools
import os

import pytest
from PIL import Image

from prism_eval.core.records import JudgeRequest, Sampling
from prism_eval.engines.base import EngineError
from prism_eval.engines.dp import DataParallel, gpu_groups, split_even
from prism_eval.engines.registry import load_captioner, load_judge


def test_split_even_and_gpu_groups():
    assert split_even(7, 3) == [(0, 3), (3, 5), (5, 7)]
    assert split_even(2, 4) == [(0, 1), (1, 2), (2, 2), (2, 2)]
    assert gpu_groups(2, 2, devices=["0", "1", "2", "3"]) == ["0,1", "2,3"]
    assert gpu_groups(3, 1, devices=[]) == [None, None, None]  # CPU: replicas share the machine
    with pytest.raises(ValueError, match="needs 4 GPUs; 3 visible"):
        gpu_groups(2, 2, devices=["0", "1", "2"])
    with pytest.raises(ValueError, match="must be >= 1"):
        gpu_groups(0)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    from prism_eval.engines.tiny import build_tiny_lm, build_tiny_vlm

    d = tmp_path_factory.mktemp("dp")
    return {"judge": f"hf:{build_tiny_lm(d / 'lm')}", "captioner": f"hf:{build_tiny_vlm(d / 'vlm', 'llava')}"}


def _requests(n: int) -> list[JudgeRequest]:
    return [JudgeRequest(messages=(("user", f"Caption: a red car number {i}. What color is the car?"),),
                         prefill="The answer is", chat_format="chatml" if i % 2 else "model") for i in range(n)]


def test_judge_replicas_equal_one_engine(tiny_models):
    reqs = _requests(7)
    letters = [["A", "B", "C"]] * 7
    conts = [[" red", " blue", " green car"]] * 7
    single = load_judge(tiny_models["judge"])
    want = (single.generate(reqs, Sampling(max_new_tokens=6)),
            single.generate(reqs, Sampling(temperature=0.9, max_new_tokens=6, seed=2)),
            single.letter_logprobs(reqs, letters), single.option_logliks(reqs, conts))
    with DataParallel(functools.partial(load_judge, tiny_models["judge"]), 2, devices=["0", "1"]) as dp:
        info = dp.worker_info()
        assert [i["cuda_visible_devices"] for i in info] == ["0", "1"]
        assert len({i["pid"] for i in info} | {os.getpid()}) == 3
        got = (dp.generate(reqs, Sampling(max_new_tokens=6)),
               dp.generate(reqs, Sampling(temperature=0.9, max_new_tokens=6, seed=2)),
               dp.letter_logprobs(reqs, letters), dp.option_logliks(reqs, conts))
        assert dp.fingerprint() == single.fingerprint() and dp.spec == single.spec
        texts = ["a red car", "two blue boats at dusk"]
        assert dp.token_ends(texts) == single.token_ends(texts) and single.token_ends(texts)[1]
    assert got[0] == want[0] and got[1] == want[1]
    for g, w in zip(got[2], want[2]):
        assert g == pytest.approx(w, abs=1e-5)
    for g, w in zip(got[3], want[3]):
        assert [n for _, n in g] == [n for _, n in w]
        assert [s for s, _ in g] == pytest.approx([s for s, _ in w], abs=1e-5)


def test_captioner_replicas_equal_one_engine_and_errors_surface(tiny_models):
    imgs = [[Image.new("RGB", (30 + i, 30), (20 * i, 90, 200))] for i in range(5)]
    prompts = ["Describe the image."] * 5
    hot = Sampling(temperature=0.8, max_new_tokens=6, seed=1)
    want = load_captioner(tiny_models["captioner"]).caption(imgs, prompts, 2, hot)
    with DataParallel(functools.partial(load_captioner, tiny_models["captioner"]), 2) as dp:
        assert dp.caption(imgs, prompts, 2, hot) == want
        with pytest.raises(EngineError, match="replica 0: ValueError: caption: n must be >= 1"):
            dp.caption(imgs, prompts, 0, hot)
        assert dp.caption(imgs[:1], prompts[:1], 2, hot) == want[:1]  # still usable; one replica busy


def test_a_replica_that_cannot_start_is_reported(tmp_path):
    with pytest.raises(EngineError, match="replica 0: .*cannot load model"):
        DataParallel(functools.partial(load_judge, f"hf:{tmp_path / 'missing'}"), 2)
