"""Training data: the CapRL-QA-75K layout (parquet / dataset folder / JSONL) and the evaluator's JSONL."""
import io
import json

import pytest
from PIL import Image

from caprl_train.data import DataConfig, DataError, load_training_data, normalise_question, training_row
from caprl_train.reward import questions_from_records

GT = [{"question": "What colour is the wall?", "choices": ["A) red", "B) blue", "C) green", "D) white"],
       "answer": "C"},
      {"question": "How many cats?", "choices": ["A) 1", "B) 2", "C) 3", "D) 4"], "answer": "B"}]


def png(colour, size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def check_row(row, sample_id, n_questions, size=None):
    assert row["prompt"] == [{"role": "user", "content": "Please describe this image in detail."}]
    assert row["sample_id"] == sample_id
    assert row["image"].mode == "RGB"
    if size:
        assert row["image"].size == size
    qa = json.loads(row["qa"])
    assert len(qa) == n_questions
    # the reward reads the column back into the same questions
    qs = questions_from_records(row["qa"], sample_id)
    assert [q.options for q in qs] == [tuple(q["options"]) for q in qa]
    return qa


@pytest.mark.parametrize("binary", [False, True])
def test_caprl_qa_75k_layout_from_parquet(tmp_path, binary):
    import datasets

    rows = {"id": ["r0", "r1"], "image": [png("green"), png("red", (300, 200))],
            "prompt": ["<image> Please describe this image in detail."] * 2,
            "data_source": ["image_caption_rl"] * 2,
            "reward_model": [{"ground_truth": GT, "style": "rule"}, {"ground_truth": GT[:1], "style": "rule"}]}
    if binary:  # the hub card lists the image as raw bytes
        ds = datasets.Dataset.from_dict(rows)
    else:
        rows["image"] = [{"bytes": b, "path": None} for b in rows["image"]]
        ds = datasets.Dataset.from_dict(rows, features=datasets.Features({
            "id": datasets.Value("string"), "image": datasets.Image(), "prompt": datasets.Value("string"),
            "data_source": datasets.Value("string"),
            "reward_model": {"ground_truth": [{"question": datasets.Value("string"),
                                               "choices": [datasets.Value("string")],
                                               "answer": datasets.Value("string")}],
                             "style": datasets.Value("string")}}))
    ds.to_parquet(tmp_path / "qa.parquet")
    data = load_training_data(DataConfig(source=str(tmp_path / "qa.parquet"), max_image_side=100))
    assert len(data) == 2
    qa = check_row(data[0], "r0", 2, (40, 30))
    assert qa[0] == {"question": "What colour is the wall?", "options": ["red", "blue", "green", "white"],
                     "answer": "C"}
    check_row(data[1], "r1", 1, (100, 67))  # long side capped, aspect kept

    ds.save_to_disk(str(tmp_path / "saved"))
    again = load_training_data(DataConfig(source=str(tmp_path / "saved"), image_size=56, limit=1))
    assert len(again) == 1
    check_row(again[0], "r0", 2, (56, 56))


def test_training_layout_jsonl_and_evaluator_jsonl(tmp_path):
    for i, colour in enumerate(("red", "blue")):
        (tmp_path / f"{i}.png").write_bytes(png(colour))
    lines = [training_row(f"img{i}", f"{i}.png", [normalise_question(q, "t") for q in GT]) for i in range(2)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    data = load_training_data(DataConfig(source=str(tmp_path / "train.jsonl")))
    assert [data[i]["sample_id"] for i in range(2)] == ["img0", "img1"]
    check_row(data[1], "img1", 2)

    bench = [{"id": f"q{k}", "image": f"{k % 2}.png", "question": f"Question {k}?", "options": ["x", "y", "z"],
              "answer": "ABC"[k % 3]} for k in range(5)]
    bench.append({"id": "open", "image": "0.png", "question": "Say something", "answer": "hi"})
    (tmp_path / "bench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in bench))
    grouped = load_training_data(DataConfig(source=str(tmp_path / "bench.jsonl")))
    assert len(grouped) == 2  # one row per image, questions grouped; the open question is dropped
    qa0 = check_row(grouped[0], "0.png", 3)
    assert [q["id"] for q in qa0] == ["q0", "q2", "q4"]


def test_normalise_question_forms():
    assert normalise_question({"question": "Q?", "choices": ["B) two", "A) one"], "answer": "B) two"}, "x") == \
        {"question": "Q?", "options": ["one", "two"], "answer": "B"}
    assert normalise_question({"question": "Q?", "options": ["one", "two"], "answer": "two"}, "x")["answer"] == "B"
    assert normalise_question({"question": "Q?", "options": ["one", "two"], "answer": "b", "image_acc": 1.0},
                              "x") == {"question": "Q?", "options": ["one", "two"], "answer": "B", "image_acc": 1.0}


@pytest.mark.parametrize("record,message", [
    ({"question": "Q?", "choices": ["A) one", "B) two"], "answer": "C"}, "answer 'C' is not one of the option letters A-B or the exact text of one option"),
    ({"question": "", "choices": ["A) one", "B) two"], "answer": "A"}, "missing 'question' text"),
    ({"question": "Q?", "choices": ["A) one"], "answer": "A"}, "a question needs a list of at least 2 'options' or 'choices'"),
])
def test_bad_questions_name_the_row(tmp_path, record, message):
    (tmp_path / "0.png").write_bytes(png("red"))
    row = {"id": "bad-row", "image": "0.png", "reward_model": {"ground_truth": [record]}}
    (tmp_path / "t.jsonl").write_text(json.dumps({"id": "ok", "image": "0.png", "qa": GT}) + "\n" + json.dumps(row))
    with pytest.raises(DataError) as err:
        load_training_data(DataConfig(source=str(tmp_path / "t.jsonl")))
    assert str(err.value) == f"{tmp_path / 't.jsonl'}:2 question 0: {message}"


def test_bad_sources(tmp_path):
    with pytest.raises(DataError, match="no training data given"):
        load_training_data(DataConfig(source=""))
    with pytest.raises(DataError, match="training data file does not exist"):
        load_training_data(DataConfig(source=str(tmp_path / "missing.jsonl")))
    (tmp_path / "t.jsonl").write_text(json.dumps({"id": "a", "image": "../escape.png", "qa": GT}) + "\n")
    with pytest.raises(DataError, match="escapes the benchmark folder"):
        load_training_data(DataConfig(source=str(tmp_path / "t.jsonl")))
    (tmp_path / "t.jsonl").write_text("{not json\n")
    with pytest.raises(DataError, match=r"t.jsonl:1: malformed JSON"):
        load_training_data(DataConfig(source=str(tmp_path / "t.jsonl")))
