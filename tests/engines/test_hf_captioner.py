"""Tiny locally built VLMs and the transformers captioner on them (real model code paths)."""
from __future__ import annotations

import hashlib

import pytest
from PIL import Image

from prism_eval.core.records import Sampling
from prism_eval.engines.base import Captioner
from prism_eval.engines.hf import HFCaptioner
from prism_eval.engines.registry import load_captioner
from prism_eval.engines.tiny import build_tiny_vlm

ARCHS = ["llava", "qwen2_5_vl"]


def _digest(folder):
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.iterdir()) if f.is_file()}


@pytest.fixture(scope="module")
def vlm_dirs(tiny_llava_dir, tiny_qwen_vl_dir):
    return {"llava": tiny_llava_dir, "qwen2_5_vl": tiny_qwen_vl_dir}


@pytest.fixture(scope="module")
def captioners(vlm_dirs):
    return {arch: load_captioner(f"hf:{d}", batch_size=4) for arch, d in vlm_dirs.items()}


def _images():
    return [[Image.new("RGB", (64, 48), (200, 10, 10))],
            [Image.new("RGB", (100, 100), (0, 0, 250))],
            [Image.new("RGB", (64, 64), "green"), Image.new("L", (30, 70), 128)]]


PROMPTS = ["Describe the image.", "Please describe this image in detail.", "Compare the two images."]


@pytest.mark.parametrize("arch", ARCHS)
def test_tiny_vlm_build_is_deterministic(tmp_path, vlm_dirs, arch):
    again = build_tiny_vlm(tmp_path / "again", arch=arch, seed=0)
    assert _digest(again) == _digest(vlm_dirs[arch])
    other = build_tiny_vlm(tmp_path / "other", arch=arch, seed=1)
    assert _digest(other)["model.safetensors"] != _digest(again)["model.safetensors"]


def test_unknown_tiny_arch_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown arch 'gpt'"):
        build_tiny_vlm(tmp_path, arch="gpt")  # type: ignore[arg-type]


@pytest.mark.parametrize("arch", ARCHS)
def test_greedy_captions_are_printable_and_repeat(captioners, arch):
    cap = captioners[arch]
    assert isinstance(cap, Captioner) and cap.spec.startswith("hf:")
    out = cap.caption(_images(), PROMPTS, 3, Sampling(temperature=0.0, max_new_tokens=16))
    assert [len(x) for x in out] == [3, 3, 3]
    for texts in out:
        assert len(set(texts)) == 1  # greedy: the same text n times
        assert texts[0] and all(ch.isascii() and (ch.isprintable() or ch == "\n") for ch in texts[0])
    assert out == cap.caption(_images(), PROMPTS, 3, Sampling(temperature=0.0, max_new_tokens=16))


@pytest.mark.parametrize("arch", ARCHS)
def test_sampled_captions_are_seeded_and_batch_independent(captioners, arch):
    cap = captioners[arch]
    sampling = Sampling(temperature=1.0, max_new_tokens=12, seed=5)
    out = cap.caption(_images(), PROMPTS, 3, sampling)
    assert all(len(set(texts)) > 1 for texts in out)  # n distinct draws
    one_by_one = [cap.caption([ims], [p], 3, sampling)[0] for ims, p in zip(_images(), PROMPTS)]
    assert out == one_by_one
    other_seed = cap.caption(_images(), PROMPTS, 3, Sampling(temperature=1.0, max_new_tokens=12, seed=6))
    assert other_seed != out


def test_chat_template_has_one_placeholder_per_image(captioners):
    llava = captioners["llava"].render(2, "Compare.")
    assert llava.count("<image>") == 2 and llava.endswith("<|im_start|>assistant\n")
    qwen = captioners["qwen2_5_vl"].render(3, "Compare.")
    assert qwen.count("<|vision_start|><|image_pad|><|vision_end|>") == 3


def test_max_pixels_limits_qwen_image_tokens(vlm_dirs):
    image = Image.new("RGB", (224, 224), "white")
    big = HFCaptioner(str(vlm_dirs["qwen2_5_vl"]))
    small = HFCaptioner(str(vlm_dirs["qwen2_5_vl"]), max_pixels=56 * 56)
    grids = [c.processor(text=[c.render(1, "x")], images=[image], return_tensors="pt")["image_grid_thw"]
             for c in (big, small)]
    assert grids[0].prod() > grids[1].prod()
    assert small.fingerprint()["max_pixels"] == 56 * 56
    assert small.caption([[image]], ["Describe."], 1, Sampling(max_new_tokens=4))[0][0]


def test_max_pixels_on_a_fixed_size_processor_is_an_error(vlm_dirs):
    with pytest.raises(ValueError, match="max_pixels applies to pixel-budget image processors"):
        HFCaptioner(str(vlm_dirs["llava"]), max_pixels=1000)


def test_fingerprint_names_weights(captioners, vlm_dirs, tmp_path):
    fp = captioners["llava"].fingerprint()
    assert fp["spec"] == f"hf:{vlm_dirs['llava']}" and fp["dtype"] == "float32" and fp["files_sha256"]
    other = HFCaptioner(str(build_tiny_vlm(tmp_path / "s1", arch="llava", seed=1)))
    assert other.fingerprint()["files_sha256"] != fp["files_sha256"]


def test_missing_model_is_a_one_line_error(tmp_path):
    with pytest.raises(Exception) as err:
        load_captioner(f"hf:{tmp_path / 'nowhere'}")
    assert "nowhere" in str(err.value) and "\n" not in str(err.value)
