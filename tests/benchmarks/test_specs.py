"""Every shipped benchmark spec, loaded from a small local dataset with that benchmark's real columns.

Each dataset is written by the test (save_to_disk, parquet, or JSONL + a zip of
images) and read through the spec via `datasets.load_from_disk` /
`datasets.load_dataset`, the same code path a hub id takes.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import zipfile
from pathlib import Path

import datasets
import pytest
from PIL import Image

from prism_eval.benchmarks import load_benchmark
from prism_eval.benchmarks.catalog.dataset import filter_indices, load_rows, subset_indices
from prism_eval.benchmarks.catalog.index import get_spec, get_suite, list_specs
from prism_eval.benchmarks.catalog.rows import load_spec_benchmark
from prism_eval.benchmarks.catalog.schema import SpecError

IMG = datasets.Image()


def png(seed: int) -> bytes:
    img = Image.new("RGB", (6, 5), ((seed * 37) % 256, (seed * 91) % 256, (seed * 13) % 256))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def image(seed: int) -> dict:
    return {"bytes": png(seed), "path": None}


def save_dict(root: Path, split: str, rows: dict, features: dict, config: str | None = None) -> Path:
    folder = root / config if config else root
    ds = datasets.Dataset.from_dict(rows, features=datasets.Features(features))
    datasets.DatasetDict({split: ds}).save_to_disk(str(folder))
    return root


def save_parquet(root: Path, split: str, rows: dict, features: dict) -> Path:
    ds = datasets.Dataset.from_dict(rows, features=datasets.Features(features))
    (root / "data").mkdir(parents=True)
    ds.to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
    return root


S = datasets.Value("string")
I = datasets.Value("int64")
L = datasets.List(datasets.Value("string"))


# ------------------------------------------------------------------ builders (real column layouts)

def build_mmstar(root):
    rows = {
        "index": [0, 1, 2],
        "question": [
            "Which option describe the object relationship in the image correctly?\nOptions: A: The suitcase is on "
            "the book., B: The suitcase is beneath the cat., C: The suitcase is beside the book., D: The suitcase "
            "is beneath the bed.",
            "What is the main feature in the background of the image?\nOptions: A: A lake, B: A mountain, C: A "
            "forest, D: A city",
            "How many people are there?\nOptions: A: 1, B: 2, C: 3, D: 4",
        ],
        "image": [image(1), image(2), image(1)],
        "answer": ["A", "B", "D"],
        "category": ["instance reasoning", "coarse perception", "fine-grained perception"],
        "l2_category": ["cross-instance relation reasoning", "image scene and topic", "object counting"],
        "meta_info": [{"source": "MMBench", "split": "val", "image_path": "x.jpg"}] * 3,
    }
    feats = {"index": I, "question": S, "image": IMG, "answer": S, "category": S, "l2_category": S,
             "meta_info": {"source": S, "split": S, "image_path": S}}
    return save_dict(root, "val", rows, feats)


def check_mmstar(b):
    qs = sorted(b.questions, key=lambda q: int(q.id))  # grouping by image puts row 2 beside row 0
    assert [q.answer for q in qs] == ["A", "B", "D"]
    assert qs[0].text.startswith("Which option describe") and "Options" not in qs[0].text
    assert qs[0].options == ("The suitcase is on the book.", "The suitcase is beneath the cat.",
                             "The suitcase is beside the book.", "The suitcase is beneath the bed.")
    assert qs[2].options == ("1", "2", "3", "4")
    assert qs[1].category == "coarse perception"
    assert len(b.samples) == 2  # rows 0 and 2 share an image: captioned once
    assert b.samples[0].images[0].sha256 == sha(png(1))
    assert b.kind == "mcq" and b.metric == "exact_match"


def build_chartqa(root):
    rows = {"type": ["human_test", "augmented_test"], "question": ["What is the peak value?", "Which year is lowest?"],
            "answer": ["1,234", "2019"], "image": [image(3), image(4)]}
    return save_parquet(root, "test", rows, {"type": S, "question": S, "answer": S, "image": IMG})


def check_chartqa(b):
    q = b.questions
    assert q[0].options is None and q[0].answer == "1,234" and q[0].category == "human_test"
    assert q[1].answer == "2019" and b.kind == "open" and b.metric == "relaxed_accuracy"
    assert b.answer_format == "boxed" and b.protocol == "caprl-eval"


def build_chartqa_pro(root):
    rows = {"Question": [["What is the highest value?"], ["Which bar is tallest?", "By how much does it exceed B?"]],
            "Answer": [["42"], ["A", "3"]], "Question Type": ["Factoid", "Conversational"],
            "Paragraph": ["", "Sales in 2020."], "Year": [["NO"], ["NO", "NO"]], "image": [png(5), png(6)]}
    feats = {"Question": L, "Answer": L, "Question Type": S, "Paragraph": S, "Year": L,
             "image": datasets.Value("binary")}
    return save_dict(root, "test", rows, feats)


def check_chartqa_pro(b):
    q = b.questions
    assert q[0].text == "What is the highest value?" and q[0].answer == "42"
    assert q[1].text == "Context: Sales in 2020.\n\nQ1: Which bar is tallest?\nA1: A\nQ2: By how much does it exceed B?"
    assert q[1].answer == "3" and q[1].category == "Conversational"
    assert b.samples[1].images[0].sha256 == sha(png(6))


def _vqa_rows(prefix):
    return {"questionId": [f"{prefix}1", f"{prefix}2"], "question": ["What is the title?", "How many icons?"],
            "answers": [["Global Warming", "global warming facts"], ["7"]], "image": [image(7), image(8)]}


def build_infovqa(root):
    rows = _vqa_rows("9")
    rows |= {"answer_type": [["single span"], ["number"]], "image_url": ["u1", "u2"], "operation/reasoning": [[], ["Counting"]],
             "ocr": ["{}", "{}"], "data_split": ["val", "val"]}
    feats = {"questionId": S, "question": S, "answers": L, "image": IMG, "answer_type": L, "image_url": S,
             "operation/reasoning": L, "ocr": S, "data_split": S}
    return save_dict(root, "validation", rows, feats, config="InfographicVQA")


def check_infovqa(b):
    q = b.questions
    assert q[0].id == "91" and q[0].answer == "Global Warming" and q[0].targets == ("global warming facts",)
    assert q[0].accepted == ("Global Warming", "global warming facts")
    assert b.metric == "anls"


def build_docvqa(root):
    rows = _vqa_rows("5")
    rows |= {"question_types": [["layout"], ["figure/diagram"]], "docId": [1, 2], "ucsf_document_id": ["a", "b"],
             "ucsf_document_page_no": ["1", "2"], "data_split": ["val", "val"]}
    feats = {"questionId": S, "question": S, "answers": L, "image": IMG, "question_types": L, "docId": I,
             "ucsf_document_id": S, "ucsf_document_page_no": S, "data_split": S}
    return save_dict(root, "validation", rows, feats, config="DocVQA")


def check_docvqa(b):
    assert [q.id for q in b.questions] == ["51", "52"] and b.questions[1].answer == "7"


def _mmmu_rows(prefix, with_open=True):
    rows = {
        "id": [f"{prefix}_Art_Theory_1", f"{prefix}_Physics_2", f"{prefix}_Math_3"],
        "question": ["<image 1> Which style is shown?", "Compare <image 1> and <image 2>. Which is heavier?",
                     "What is the value of x in <image 1>?"],
        "options": ["['Baroque', 'Rococo', 'Gothic', 'Romanesque']", "['Left', 'Right']",
                    "[]" if with_open else "['1', '2', '3']"],
        "explanation": ["", "", ""],
        "image_1": [image(10), image(11), image(12)],
        "image_2": [None, image(13), None],
        "img_type": ["['Paintings']", "['Diagrams']", "['Diagrams']"],
        "answer": ["B", "A", "['3.5', '7/2']" if with_open else "C"],
        "topic_difficulty": ["Easy", "Medium", "Hard"],
    }
    for k in range(3, 8):
        rows[f"image_{k}"] = [None, None, None]
    return rows


def _mmmu_feats(extra):
    feats = {"id": S, "question": S, "options": S, "explanation": S, "img_type": S, "answer": S, "topic_difficulty": S}
    feats |= {f"image_{k}": IMG for k in range(1, 8)}
    return feats | extra


def build_mmmu(root):
    rows = _mmmu_rows("validation") | {"question_type": ["multiple-choice", "multiple-choice", "open"],
                                       "subfield": ["Art", "Mechanics", "Algebra"]}
    return save_dict(root, "validation", rows, _mmmu_feats({"question_type": S, "subfield": S}))


def check_mmmu(b):
    q = b.questions
    assert q[0].options == ("Baroque", "Rococo", "Gothic", "Romanesque") and q[0].answer == "B"
    assert q[0].category == "Art_Theory" and q[1].category == "Physics"
    assert q[2].options is None and q[2].answer == "3.5" and q[2].targets == ("7/2",)
    assert b.kind == "mixed"
    two = [s for s in b.samples if s.questions[0].id.endswith("Physics_2")][0]
    assert [i.sha256 for i in two.images] == [sha(png(11)), sha(png(13))]
    assert two.images[1].key == "mmmu/validation_Physics_2/1"


def build_mmmu_pro(root):
    rows = _mmmu_rows("test", with_open=False) | {"subject": ["Art_Theory", "Physics", "Math"]}
    return save_dict(root, "test", rows, _mmmu_feats({"subject": S}), config="standard (10 options)")


def check_mmmu_pro(b):
    assert [q.answer for q in b.questions] == ["B", "A", "C"] and b.kind == "mcq"
    assert b.questions[2].options == ("1", "2", "3")


def _charxiv_rows():
    return {
        "image": [image(20), image(21)], "category": ["cs", "physics"], "year": ["20", "21"],
        "original_figure_path": ["a.jpg", "b.jpg"], "original_id": ["1", "2"],
        "figure_path": ["images/0.jpg", "images/1.jpg"], "num_subplots": [1, 4],
        "subplot_row": [None, 2], "subplot_col": [None, 1], "subplot_loc": [[0, 0], None],
        "descriptive_q1": [1, 19], "descriptive_q2": [2, 10], "descriptive_q3": [13, 4], "descriptive_q4": [16, 18],
        "descriptive_a1": ["Loss curves", "4"], "descriptive_a2": ["Epoch", "3"], "descriptive_a3": ["train, val", "0"],
        "descriptive_a4": ["decreases", "2 by 2"],
        "reasoning_q": ["Which line ends highest?", "What is the difference between the max values?"],
        "reasoning_q_source": [1, 4], "reasoning_a": ["val", "0.25"],
    }


def _charxiv_build(root):
    feats = {"image": IMG, "category": S, "year": S, "original_figure_path": S, "original_id": S, "figure_path": S,
             "num_subplots": I, "subplot_row": I, "subplot_col": I, "subplot_loc": datasets.List(I),
             **{f"descriptive_q{k}": I for k in range(1, 5)}, **{f"descriptive_a{k}": S for k in range(1, 5)},
             "reasoning_q": S, "reasoning_q_source": I, "reasoning_a": S}
    return save_dict(root, "validation", _charxiv_rows(), feats)


build_charxiv = build_charxiv_descriptive = _charxiv_build


def check_charxiv(b):
    q = b.questions
    assert q[0].answer == "val" and q[0].category == "text-in-chart" and q[1].category == "number-in-general"
    assert q[1].id == "images/1.jpg" and b.metric == "relaxed_accuracy+math_equal"


def check_charxiv_descriptive(b):
    q = b.questions
    assert len(q) == 8 and len(b.samples) == 2
    assert q[0].text == "For the current plot, what is its title?" and q[0].answer == "Loss curves"
    assert q[4].text == "What is the number of subplots?" and q[4].answer == "4"
    assert q[5].text == "For the subplot at row 2 and column 1, how many lines are there?"
    assert q[0].id == "images/0.jpg_d1" and q[0].category == "template 1"


def build_seed(root):
    n = 6
    rows = {"answer": ["A", "B", "C", "D", "A", "B"], "choice_a": [f"a{i}" for i in range(n)],
            "choice_b": [f"b{i}" for i in range(n)], "choice_c": [f"c{i}" for i in range(n)],
            "choice_d": [f"d{i}" for i in range(n)], "data_id": [f"{i}.jpg" for i in range(n)],
            "data_type": ["image", "image", "video", "image", "image", "video"],
            "question": [f"Question {i}?" for i in range(n)], "question_id": [f"q{i}" for i in range(n)],
            "question_type_id": [1, 5, 10, 9, 2, 11],
            "image": [[image(30 + i)] if i not in (2, 5) else [image(40), image(41)] for i in range(n)],
            "segment": [None] * n}
    feats = {"answer": S, "choice_a": S, "choice_b": S, "choice_c": S, "choice_d": S, "data_id": S, "data_type": S,
             "question": S, "question_id": S, "question_type_id": I, "image": datasets.List(IMG),
             "segment": datasets.List(I)}
    return save_dict(root, "test", rows, feats)


def check_seed(b):
    q = b.questions
    assert [x.id for x in q] == ["q0", "q1", "q3", "q4"]  # video rows filtered out
    assert q[0].options == ("a0", "b0", "c0", "d0") and q[1].answer == "B"
    assert q[0].category == "Scene Understanding" and q[2].category == "Text Understanding"


def build_mathverse(root):
    rows = {"sample_index": ["1", "2"], "problem_index": ["1", "2"], "problem_version": ["Vision Intensive"] * 2,
            "question": ["As shown in the figure, AB is parallel to CD. Find the angle.\nChoices:\nA:145°\nB:35°\nC:90°\nD:55°",
                         "Find the area of the shaded region."],
            "image": [image(50), image(51)], "answer": ["B", "12\\pi"], "question_type": ["multi-choice", "free-form"],
            "metadata": [{"split": "testmini", "source": "GeoQA", "subject": "Plane Geometry", "subfield": "Angle"}] * 2,
            "query_wo": ["q", "q"], "query_cot": ["q", "q"], "question_for_eval": ["q", "q"]}
    feats = {"sample_index": S, "problem_index": S, "problem_version": S, "question": S, "image": IMG, "answer": S,
             "question_type": S, "metadata": {"split": S, "source": S, "subject": S, "subfield": S},
             "query_wo": S, "query_cot": S, "question_for_eval": S}
    return save_dict(root, "vision_intensive", rows, feats, config="testmini_version_split")


def check_mathverse(b):
    q = b.questions
    assert q[0].options == ("145°", "35°", "90°", "55°") and q[0].answer == "B"
    assert q[0].text == "As shown in the figure, AB is parallel to CD. Find the angle."
    assert q[1].options is None and q[1].answer == "12\\pi" and b.kind == "mixed"


def build_mathvision(root):
    rows = {"id": ["1", "2"], "question": ["Which shape comes next? <image1>", "How many triangles are there? <image1>"],
            "options": [["A", "B", "C", "D", "E"], []], "image": ["images/1.jpg", "images/2.jpg"],
            "decoded_image": [image(60), image(61)], "answer": ["C", "8"], "solution": [None, None],
            "level": [1, 2], "subject": ["logic", "counting"]}
    feats = {"id": S, "question": S, "options": L, "image": S, "decoded_image": IMG, "answer": S, "solution": S,
             "level": I, "subject": S}
    return save_parquet(root, "test", rows, feats)


def check_mathvision(b):
    q = b.questions
    assert q[0].options == ("A", "B", "C", "D", "E") and q[0].answer == "C" and q[0].category == "logic"
    assert q[1].options is None and q[1].answer == "8"


def build_wemath(root):
    rows = {"ID": ["1", "1", "2"], "split": ["testmini"] * 3, "knowledge concept": ["Area", "Area", "Angles"],
            "question": ["What is the area?", "What is the length?", "Which angle is acute?"],
            "option": ["A. 3 cm²; B. 4 cm²; C. 5 cm²; D. 6 cm²; E. No correct answer", "A. 1; B. 2",
                       "A. ∠1; B. ∠2; C. ∠3"],
            "answer": ["B", "A", "C"], "image_path": [image(70), image(70), image(71)],
            "key": ["2steps_multi", "2steps_1", "1step"], "question number": [1, 2, 3],
            "knowledge concept description": ["d", "d", "d"]}
    feats = {"ID": S, "split": S, "knowledge concept": S, "question": S, "option": S, "answer": S, "image_path": IMG,
             "key": S, "question number": I, "knowledge concept description": S}
    return save_dict(root, "testmini", rows, feats)


def check_wemath(b):
    q = {x.id: x for x in b.questions}  # ID + key makes the id; rows 0 and 1 share an image
    assert q["1/2steps_multi"].options == ("3 cm²", "4 cm²", "5 cm²", "6 cm²", "No correct answer")
    assert q["1/2steps_multi"].text == "What is the area?" and q["2/1step"].options == ("∠1", "∠2", "∠3")
    assert q["1/2steps_1"].answer == "A" and q["2/1step"].answer == "C"
    assert len(b.samples) == 2 and q["1/2steps_multi"].category == "Area"


def build_visulogic(root):
    root.mkdir(parents=True, exist_ok=True)
    lines = [{"id": "00001", "question": "Which option completes the sequence? A, B, C or D.",
              "label": "C", "image_path": "images/00001.png", "tag": "Quantitative Reasoning"},
             {"id": "00002", "question": "Choose the odd one out.", "label": "a",
              "image_path": "images/00002.png", "tag": "Spatial Reasoning"}]
    (root / "data.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    with zipfile.ZipFile(root / "images.zip", "w") as zf:
        zf.writestr("images/00001.png", png(80))
        zf.writestr("images/00002.png", png(81))
    return root


def check_visulogic(b):
    q = b.questions
    assert q[0].options is None and q[0].answer == "C" and q[1].answer == "a"
    assert b.samples[0].images[0].sha256 == sha(png(80)) and b.metric == "exact_match"


def build_ai2d(root):
    rows = {"question": ["Which stage comes after the egg?", "What does the arrow show?"],
            "options": [["larva", "pupa", "adult", "egg"], ["energy flow", "water"]], "answer": ["0", "1"],
            "image": [image(90), image(91)]}
    return save_dict(root, "test", rows, {"question": S, "options": L, "answer": S, "image": IMG})


def check_ai2d(b):
    assert [q.answer for q in b.questions] == ["A", "B"] and b.protocol == "prism" and b.answer_format == "short"


def build_mathvista(root):
    md = {"category": "math-targeted-vqa", "context": "geometry diagram", "grade": "high school",
          "img_height": 5, "img_width": 6, "language": "english", "skills": ["geometry reasoning"],
          "source": "Geometry3K", "split": "testmini", "task": "geometry problem solving"}
    rows = {"pid": ["1", "2"], "question": ["Find x.", "What is the total?"], "image": ["images/1.jpg", "images/2.jpg"],
            "decoded_image": [image(95), image(96)], "choices": [["3", "5", "7", "9"], None], "unit": [None, None],
            "precision": [None, 1.0], "answer": ["7", "14.5"], "question_type": ["multi_choice", "free_form"],
            "answer_type": ["text", "float"], "metadata": [md, md | {"task": "figure question answering"}],
            "query": ["Hint: ...", "Hint: ..."]}
    feats = {"pid": S, "question": S, "image": S, "decoded_image": IMG, "choices": L, "unit": S,
             "precision": datasets.Value("float64"), "answer": S, "question_type": S, "answer_type": S,
             "metadata": {"category": S, "context": S, "grade": S, "img_height": I, "img_width": I, "language": S,
                          "skills": L, "source": S, "split": S, "task": S}, "query": S}
    return save_dict(root, "testmini", rows, feats)


def check_mathvista(b):
    q = b.questions
    assert q[0].options == ("3", "5", "7", "9") and q[0].answer == "C"
    assert q[0].category == "geometry problem solving" and q[1].category == "figure question answering"
    assert q[1].options is None and q[1].answer == "14.5"



@pytest.mark.parametrize("name", list_specs())
def test_spec_loads_its_real_layout(name, tmp_path):
    key = name.replace("-", "_")
    root = globals()[f"build_{key}"](tmp_path / name)
    bench = load_spec_benchmark(name, dataset_path=str(root))
    assert bench.name == name and bench.samples
    for sample in bench.samples:
        assert sample.benchmark == name
        for ref in sample.images:
            assert ref.data is not None and ref.sha256 == sha(ref.data)
    globals()[f"check_{key}"](bench)


def test_every_spec_and_suite_is_covered():
    assert set(list_specs()) >= {
        "mmstar", "chartqa", "chartqa-pro", "infovqa", "docvqa", "mmmu", "mmmu-pro", "charxiv", "charxiv-descriptive",
        "seed", "mathverse", "mathvision", "wemath", "visulogic", "ai2d", "mathvista"}
    caprl = get_suite("caprl").members
    assert len(caprl) == 12 and set(caprl) <= set(list_specs())
    assert get_suite("prism").members == ["mmstar", "ai2d", "mmmu", "mathvista"]
    assert get_suite("caprl").protocol == "caprl-eval" and get_suite("mmstar") is None
    for name in list_specs():
        spec = get_spec(name)
        assert spec.verified, f"{name}: says what was verified"
        assert spec.answer_format in ("boxed", "short")


def test_env_override_and_load_benchmark_dispatch(tmp_path, monkeypatch):
    root = build_ai2d(tmp_path / "ai2d")
    monkeypatch.setenv("PRISM_EVAL_DATA_AI2D", str(root))
    bench = load_benchmark("ai2d", limit=1)
    assert len(bench.questions) == 1 and bench.questions[0].answer == "A"
    monkeypatch.delenv("PRISM_EVAL_DATA_AI2D")
    monkeypatch.setenv("PRISM_EVAL_DATA_DIR", str(tmp_path))
    assert len(load_spec_benchmark("ai2d").questions) == 2


def test_compat_switches_metric(tmp_path):
    root = build_chartqa(tmp_path / "c")
    bench = load_spec_benchmark("chartqa", dataset_path=str(root), compat="caprl")
    assert bench.metric == "relaxed_accuracy:caprl+math_equal:caprl"


def test_seed_subset_is_deterministic_and_order_free(tmp_path):
    root = build_seed(tmp_path / "seed")
    spec = dataclasses.replace(get_spec("seed"), subset={"size": 2, "seed": 0, "by": "question_id"})
    ds = load_rows(spec, str(root))
    keep = subset_indices(spec, ds, filter_indices(spec, ds))
    assert len(keep) == 2 and keep == subset_indices(spec, ds, filter_indices(spec, ds))
    ids = {ds[i]["question_id"] for i in keep}
    shuffled = ds.shuffle(seed=3)
    keep2 = subset_indices(spec, shuffled, filter_indices(spec, shuffled))
    assert {shuffled[i]["question_id"] for i in keep2} == ids
    other = dataclasses.replace(spec, subset={"size": 2, "seed": 1, "by": "question_id"})
    assert subset_indices(other, ds, filter_indices(other, ds)) is not None


def test_user_spec_file_with_inline_options(tmp_path):
    root = build_mmstar(tmp_path / "data")
    spec_file = tmp_path / "mine.yaml"
    spec_file.write_text(
        "name: mine\ndataset: {path: unused/hub-id, split: val}\nkind: mcq\nmetric: exact_match\n"
        "fields: {question: question, options: {inline: question}, answer: answer, images: image}\n")
    bench = load_spec_benchmark(str(spec_file), dataset_path=str(root), limit=2)
    assert len(bench.questions) == 2 and bench.questions[1].options == ("A lake", "A mountain", "A forest", "A city")


@pytest.mark.parametrize("text, problem", [
    ("name: x\nkind: mcq\nmetric: exact_match\nfields: {question: q, answer: a, images: i}\n", "missing required key 'dataset'"),
    ("name: x\ndataset: {path: p, split: s}\nkind: poll\nmetric: exact_match\nfields: {question: q, answer: a, images: i}\n", "kind 'poll'"),
    ("name: x\ndataset: {path: p, split: s}\nkind: open\nmetric: bleu\nfields: {question: q, answer: a, images: i}\n", "unknown metric 'bleu'"),
    ("name: x\ndataset: {path: p, split: s}\nkind: open\nmetric: anls\nfields: {question: q, answer: a}\n", "fields needs 'images'"),
    ("name: x\ndataset: {path: p, split: s}\nkind: open\nmetric: anls\ncolour: red\nfields: {question: q, answer: a, images: i}\n", "unknown key(s) colour"),
])
def test_bad_specs_give_one_line_errors(tmp_path, text, problem):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as err:
        get_spec(str(path))
    assert problem in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_dataset_and_bad_rows_are_named(tmp_path):
    with pytest.raises(SpecError, match=r"ai2d: cannot load dataset .*nowhere"):
        load_spec_benchmark("ai2d", dataset_path=str(tmp_path / "nowhere" / "x.parquet"))
    rows = {"question": ["Q?"], "options": [["a", "b"]], "answer": ["5"], "image": [image(1)]}
    root = save_dict(tmp_path / "bad", "test", rows, {"question": S, "options": L, "answer": S, "image": IMG})
    with pytest.raises(SpecError, match=r"ai2d row 0 .*answer index '5' is out of range for 2 options"):
        load_spec_benchmark("ai2d", dataset_path=str(root))
    rows = {"question": ["Q?"], "options": [["a", "b"]], "answer": ["0"], "image": [{"bytes": b"not an image", "path": None}]}
    root = save_dict(tmp_path / "bad2", "test", rows, {"question": S, "options": L, "answer": S, "image": IMG})
    with pytest.raises(SpecError, match=r"ai2d row 0 .*image 0.*cannot be decoded"):
        load_spec_benchmark("ai2d", dataset_path=str(root))


def test_benchmarks_command_lists_everything():
    from click.testing import CliRunner

    from prism_eval.cli.benchmarks import benchmarks_command

    result = CliRunner().invoke(benchmarks_command, ["--json"])
    assert result.exit_code == 0, result.output
    rows = {r["id"]: r for r in json.loads(result.output)}
    assert rows["chartqa"]["metric"] == "relaxed_accuracy" and rows["chartqa"]["split"] == "test"
    assert rows["caprl"]["kind"] == "suite" and rows["mmstar"]["questions"] == 1500
    assert rows["prism"]["questions"] == 1500 + 3088 + 900 + 1000


def test_inline_options_that_do_not_parse_stay_an_open_question(tmp_path):
    rows = {"index": [0], "question": ["Which picture shows a cat? Choose from the four pictures."],
            "image": [image(1)], "answer": ["B"], "category": ["x"], "l2_category": ["y"],
            "meta_info": [{"source": "s", "split": "val", "image_path": "p"}]}
    feats = {"index": I, "question": S, "image": IMG, "answer": S, "category": S, "l2_category": S,
             "meta_info": {"source": S, "split": S, "image_path": S}}
    root = save_dict(tmp_path / "m", "val", rows, feats)
    q = load_spec_benchmark("mmstar", dataset_path=str(root)).questions[0]
    assert q.options is None and q.answer == "B" and q.text.startswith("Which picture")
