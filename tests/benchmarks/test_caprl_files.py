"""CapRL evaluation files: the loader on files of the dataset's layout, and the stage-2 judge prompt."""
from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path

import pytest

from prism_eval.benchmarks.caprl_files import (
    CAPRL_EVAL_FILES,
    CaprlEvalFileError,
    load_caprl_eval_file,
    resolve_eval_file,
)
from prism_eval.core.compat import VISION_PLACEHOLDER, build_judge_prompt, caprl_score


def png_bytes(rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A valid 1x1 PNG, written by hand so the test needs no imaging library."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes([0, *rgb])))
            + chunk(b"IEND", b""))


def chat_prompt(question: str) -> str:
    return f"{VISION_PLACEHOLDER}{question}<|im_end|>\n<|im_start|>assistant\n"


def conversation(image: str, text: str | None = None) -> list[dict]:
    """The qwen-vl-utils message list Eval_CapRL.py passes to process_vision_info(sample['image'])."""
    content: list[dict] = [{"type": "image", "image": image}]
    if text is not None:
        content.append({"type": "text", "text": text})
    return [{"role": "user", "content": content}]


def make_dataset(root: Path, benchmark: str, items: list[dict], images: dict[str, bytes] | None = None) -> Path:
    """root/json_file/<CapRL file name> plus root/bench_image_folder/... as the HF dataset unzips."""
    (root / "json_file").mkdir(parents=True, exist_ok=True)
    for rel, data in (images or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    path = root / "json_file" / CAPRL_EVAL_FILES[benchmark]
    path.write_text(json.dumps(items), encoding="utf-8")
    return path


CHART_IMG = "bench_image_folder/lmm_eval_chartqa/41699051005347.png"


@pytest.fixture
def chartqa_root(tmp_path: Path) -> Path:
    items = [
        {"id": 7, "prompt": chat_prompt("What is the value of the red bar?\nAnswer in \\boxed{}."),
         "answer": "45", "image": conversation(CHART_IMG)},
        {"prompt": chat_prompt("Which year is highest?"), "answer": ["2016", "2016.0"],
         "image": conversation(CHART_IMG, "Which year is highest?")},
        {"prompt": chat_prompt("How many bars?"), "answer": 3, "image": conversation(CHART_IMG)},
    ]
    make_dataset(tmp_path, "chartqa", items, {CHART_IMG: png_bytes()})
    return tmp_path


def test_loads_dataset_root_layout(chartqa_root: Path):
    samples = load_caprl_eval_file(chartqa_root, "chartqa")
    assert [s.id for s in samples] == ["chartqa:0", "chartqa:1", "chartqa:2"]
    first = samples[0]
    assert first.source_id == "7" and samples[1].source_id is None
    assert first.prompt.startswith(VISION_PLACEHOLDER) and first.answer == "45"
    assert first.question == "What is the value of the red bar?\nAnswer in \\boxed{}."  # the user turn
    assert samples[1].question == "Which year is highest?"  # the conversation's own text element
    assert samples[1].answer == ["2016", "2016.0"] and samples[2].answer == 3  # stored values kept as they are
    image = Path(first.image)
    assert image == chartqa_root / CHART_IMG and image.read_bytes()[:4] == b"\x89PNG"
    assert all(s.options is None for s in samples)


def test_file_folder_and_json_file_folder_give_the_same(chartqa_root: Path):
    by_root = load_caprl_eval_file(chartqa_root, "chartqa")
    by_json_dir = load_caprl_eval_file(chartqa_root / "json_file", "chartqa")
    by_file = load_caprl_eval_file(chartqa_root / "json_file" / "lmm_eval_chartqa.json", "chartqa")
    assert by_root == by_json_dir == by_file


def test_limit(chartqa_root: Path):
    assert [s.id for s in load_caprl_eval_file(chartqa_root, "chartqa", limit=2)] == ["chartqa:0", "chartqa:1"]
    assert load_caprl_eval_file(chartqa_root, "chartqa", limit=0) == []
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="limit"):
            load_caprl_eval_file(chartqa_root, "chartqa", limit=bad)


def test_limit_checks_only_the_kept_items(tmp_path: Path):
    good = {"prompt": chat_prompt("q"), "answer": "1", "image": "data:image/png;base64,"
            + base64.b64encode(png_bytes()).decode()}
    make_dataset(tmp_path, "wemath", [good, {"prompt": "broken"}])
    assert len(load_caprl_eval_file(tmp_path, "wemath", limit=1)) == 1
    with pytest.raises(CaprlEvalFileError, match=r"item 1: prompt lacks the image placeholder"):
        load_caprl_eval_file(tmp_path, "wemath")


def test_image_root_and_unchecked_images(tmp_path: Path):
    path = make_dataset(tmp_path / "data", "chartqa", [
        {"prompt": chat_prompt("q"), "answer": "1", "image": conversation(CHART_IMG)}])
    with pytest.raises(CaprlEvalFileError, match=r"item 0: image .* not found .*bench_image_folder\.zip"):
        load_caprl_eval_file(path, "chartqa")
    unchecked = load_caprl_eval_file(path, "chartqa", check_images=False)
    assert unchecked[0].image == str(tmp_path / "data" / CHART_IMG)
    elsewhere = tmp_path / "images"
    (elsewhere / CHART_IMG).parent.mkdir(parents=True)
    (elsewhere / CHART_IMG).write_bytes(png_bytes())
    assert load_caprl_eval_file(path, "chartqa", image_root=elsewhere)[0].image == str(elsewhere / CHART_IMG)


def test_image_forms(tmp_path: Path):
    data = png_bytes((1, 2, 3))
    (tmp_path / "abs.png").write_bytes(data)
    (tmp_path / "json_file").mkdir()
    (tmp_path / "json_file" / "rel.png").write_bytes(data)  # a file outside json_file/ is not the root
    uri = "data:image/png;base64," + base64.b64encode(data).decode()
    items = [
        {"prompt": chat_prompt("q"), "answer": "A", "image": conversation(uri)},
        {"prompt": chat_prompt("q"), "answer": "A", "image": str(tmp_path / "abs.png")},
        {"prompt": chat_prompt("q"), "answer": "A", "image": "file://" + str(tmp_path / "abs.png")},
        {"prompt": chat_prompt("q"), "answer": "A", "image": [conversation("abs.png")]},  # a list of conversations
        {"prompt": chat_prompt("q"), "answer": "A", "image": {"image_url": {"url": uri}}},
    ]
    make_dataset(tmp_path, "mmstar", items)
    samples = load_caprl_eval_file(tmp_path, "mmstar")
    assert samples[0].image == data and samples[4].image == data
    assert samples[1].image == samples[2].image == samples[3].image == str(tmp_path / "abs.png")


def test_multiple_choice_options(tmp_path: Path):
    img = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    items = [
        {"prompt": chat_prompt("Which animal is shown?\nOptions: A: cat, B: dog, C: cow, D: hen"), "answer": "B",
         "image": img},
        {"prompt": chat_prompt("Which shape?\nA. circle\nB. square\nC. star"), "answer": "C", "image": img},
        {"prompt": chat_prompt("Pick one"), "answer": "A", "options": ["red", "blue"], "image": img},
        {"prompt": chat_prompt("What is 2+3?"), "answer": "5", "image": img},  # open: no options
        {"prompt": chat_prompt("Which? A. x B. y"), "answer": "E", "image": img},  # gold outside the options
    ]
    make_dataset(tmp_path, "mmstar", items)
    samples = load_caprl_eval_file(tmp_path, "mmstar")
    assert samples[0].options == ("cat", "dog", "cow", "hen")
    assert samples[1].options == ("circle", "square", "star")
    assert samples[2].options == ("red", "blue")
    assert samples[3].options is None and samples[4].options is None


def test_jsonl_is_read_as_eval_capril_reads_it(tmp_path: Path):
    img = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    path = tmp_path / "lmm_eval_seed2k.jsonl"
    rows = [{"prompt": chat_prompt("q1"), "answer": "A", "image": img},
            {"prompt": chat_prompt("q2"), "answer": "B", "image": img}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    assert [s.answer for s in load_caprl_eval_file(path, "seed")] == ["A", "B"]


@pytest.mark.parametrize("item, problem", [
    (["not", "an", "object"], "item 0: expected an object, got list"),
    ({"answer": "1", "image": "x.png"}, "item 0: 'prompt' must be a non-empty string, got nothing"),
    ({"prompt": "<|im_start|>user\nq<|im_end|>", "answer": "1", "image": "x.png"},
     "item 0: prompt lacks the image placeholder"),
    ({"prompt": chat_prompt("q"), "image": "x.png"}, "item 0: no 'answer'"),
    ({"prompt": chat_prompt("q"), "answer": None, "image": "x.png"}, "item 0: 'answer' must be a string"),
    ({"prompt": chat_prompt("q"), "answer": {"a": 1}, "image": "x.png"}, "item 0: 'answer' must be a string"),
    ({"prompt": chat_prompt("q"), "answer": [], "image": "x.png"}, "item 0: 'answer' is an empty list"),
    ({"prompt": chat_prompt("q"), "answer": "1"}, "item 0: no 'image'"),
    ({"prompt": chat_prompt("q"), "answer": "1", "image": [{"role": "user", "content": [{"type": "text",
                                                                                         "text": "hi"}]}]},
     "item 0: 'image' holds no image reference"),
    ({"prompt": chat_prompt("q"), "answer": "1", "image": "data:image/png;base64,@@@"},
     "item 0: image data URI holds invalid base64"),
    ({"prompt": chat_prompt("q"), "answer": "1", "image": "https://example.org/x.png"},
     "item 0: image 'https://example.org/x.png' is a remote URL"),
    ({"prompt": chat_prompt("q"), "answer": "1", "image": "missing.png"}, "item 0: image 'missing.png' not found"),
])
def test_bad_items_give_one_line(tmp_path: Path, item, problem):
    path = make_dataset(tmp_path, "chartqa", [item])
    with pytest.raises(CaprlEvalFileError) as info:
        load_caprl_eval_file(tmp_path, "chartqa")
    message = str(info.value)
    assert message.startswith(f"{path}: {problem}") and "\n" not in message


def test_empty_list_answer_is_fine_where_caprl_only_runs_math(tmp_path: Path):
    img = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    make_dataset(tmp_path, "mmmu", [{"prompt": chat_prompt("q"), "answer": [], "image": img}])
    assert load_caprl_eval_file(tmp_path, "mmmu")[0].answer == []


@pytest.mark.parametrize("content, problem", [
    ("{not json", "malformed JSON"),
    ('{"prompt": "x"}', "expected a JSON list of samples, got dict"),
    (b"\xff\xfe[]", "not valid UTF-8"),
])
def test_bad_files(tmp_path: Path, content, problem):
    path = tmp_path / CAPRL_EVAL_FILES["infovqa"]
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(CaprlEvalFileError, match=problem):
        load_caprl_eval_file(path, "infovqa")


def test_missing_files_and_unknown_benchmarks(tmp_path: Path):
    with pytest.raises(CaprlEvalFileError, match=r"no lmm_eval_MathVision\.json in it or in json_file/"):
        resolve_eval_file(tmp_path, "mathvision")
    with pytest.raises(CaprlEvalFileError, match="no such file or folder"):
        load_caprl_eval_file(tmp_path / "nope", "mathvision")
    with pytest.raises(CaprlEvalFileError, match=r"unknown CapRL benchmark 'seed2k'; known: chartqa, infovqa"):
        load_caprl_eval_file(tmp_path, "seed2k")


def test_file_names_are_the_launch_scripts():
    assert sorted(CAPRL_EVAL_FILES.values()) == sorted([
        "lmm_eval_chartqa.json", "lmm_eval_infovqa.json", "lmm_eval_MMStar.json", "lmm_eval_mmmu.json",
        "lmm_eval_CharXiv.json", "lmm_eval_ChartQA_Pro.json", "lmm_eval_MMMU_Pro.json", "lmm_eval_seed2k.json",
        "lmm_eval_MathVerse_MINIVInt.json", "lmm_eval_MathVision.json", "lmm_eval_WeMath.json",
        "lmm_eval_Visu.json"])


# ---------------------------------------------------------------- the stage-2 judge prompt (Eval_CapRL.py line 198)

def test_judge_prompt_exact_text():
    prompt = chat_prompt("What is the value?")
    got = build_judge_prompt(prompt, "A bar chart with one red bar at 45")
    assert got == ("<|im_start|>user\nHere is a detailed caption of an image: A bar chart with one red bar at 45. "
                   "Please answer the question based on the caption.What is the value?<|im_end|>\n"
                   "<|im_start|>assistant\n")


def test_judge_prompt_quirks():
    # the caption's own final period is kept, so CapRL's template yields ".."
    assert "red bar.. Please answer" in build_judge_prompt(chat_prompt("q"), "A red bar.")
    # every occurrence is replaced (str.replace), and the caption is inserted verbatim, braces and all
    twice = VISION_PLACEHOLDER + "a" + VISION_PLACEHOLDER + "b"
    assert build_judge_prompt(twice, "{x} $5").count("caption of an image: {x} $5. Please") == 2
    # a system turn before the user turn does not matter: the placeholder is found anywhere
    with_system = "<|im_start|>system\nS<|im_end|>\n" + chat_prompt("q")
    assert build_judge_prompt(with_system, "c").startswith("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHere")


def test_judge_prompt_without_placeholder():
    bare = "<|im_start|>user\nq<|im_end|>\n"
    with pytest.raises(ValueError, match="no image placeholder"):
        build_judge_prompt(bare, "caption")
    assert build_judge_prompt(bare, "caption", strict=False) == bare  # what CapRL silently sends


def test_loaded_sample_end_to_end(chartqa_root: Path):
    sample = load_caprl_eval_file(chartqa_root, "chartqa", limit=2)[1]
    prompt = build_judge_prompt(sample.prompt, "Bars for 2014, 2015, 2016; 2016 is highest")
    assert "2016 is highest. Please answer" in prompt and VISION_PLACEHOLDER not in prompt
    judge_output = "<think>The caption says 2016.</think>\n<answer>\\boxed{2016}</answer>"
    assert caprl_score("chartqa", judge_output, sample.answer) == 1.0
    assert caprl_score("chartqa", "<think>?</think><answer>\\boxed{1200}</answer>", sample.answer) == 0.0
