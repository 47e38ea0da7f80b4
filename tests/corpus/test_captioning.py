"""Corpus captioning: single process, a local Ray cluster, and resuming after a kill.

The captioner is the tiny random LLaVA through HFCaptioner, sampled (T=0.7,
n=2) so that "the same output" also covers seeded sampling. Ray runs locally
(ray.init(num_cpus=2), two actors); its output must equal the single-process
output exactly, and an interrupted run must resume without recomputing the
shards already written.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from prism_eval.core.records import ImageRef, Sampling
from prism_eval.corpus import CorpusError, caption_corpus, read_captions

ROOT = Path(__file__).resolve().parents[2]
SAMPLING = Sampling(temperature=0.7, top_p=0.9, max_new_tokens=8, seed=3)
N_IMAGES = 9


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory) -> str:
    from prism_eval.engines.tiny import build_tiny_vlm

    return "hf:" + str(build_tiny_vlm(tmp_path_factory.mktemp("vlm") / "tiny-llava", "llava"))


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("corpus")
    (d / "sub").mkdir()
    for i in range(N_IMAGES):
        where = d / "sub" if i % 3 == 0 else d
        Image.new("RGB", (24 + 3 * i, 20 + 2 * i), (25 * i, 255 - 20 * i, (70 * i) % 256)).save(where / f"img{i}.png")
    (d / "broken.png").write_bytes(b"not a png at all")
    (d / "notes.txt").write_text("not an image")
    return d


@pytest.fixture(scope="module")
def reference(tiny_vlm, images, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("ref") / "captions"
    summary = caption_corpus(tiny_vlm, str(images), str(out), n=2, sampling=SAMPLING, shard_size=2)
    return {"out": out, "summary": summary, "captions": read_captions(out)}


def test_single_process_writes_dataset_and_file_captioner_input(reference, images):
    out, summary = reference["out"], reference["summary"]
    assert summary["images"] == N_IMAGES + 1 and summary["captioned"] == N_IMAGES and summary["unreadable"] == 1
    assert summary["shards"] == 5 and summary["computed_shards"] == 5
    caps = reference["captions"]
    assert sorted(caps) == sorted(p.relative_to(images).as_posix() for p in images.rglob("img*.png"))
    assert all(len(c) == 2 for c in caps.values())
    failed = [json.loads(x) for x in (out / "failed.jsonl").read_text().splitlines()]
    assert [f["image"] for f in failed] == ["broken.png"] and "UnidentifiedImageError" in failed[0]["error"]

    # The folder is a parquet dataset (pretraining data) ...
    import datasets

    ds = datasets.load_dataset("parquet", data_dir=str(out / "data"), split="train")
    assert ds.num_rows == N_IMAGES and {"image", "caption", "captions", "sha256"} <= set(ds.column_names)
    assert {r["image"]: r["captions"] for r in ds} == caps
    # ... and its captions.jsonl is a file: captioner.
    from prism_eval.engines.files import FileCaptioner

    fc = FileCaptioner(out / "captions.jsonl")
    key = "sub/img0.png"
    assert fc.caption([[ImageRef(key=key, sha256="")]], ["-"], 2, Sampling()) == [caps[key]]


def test_single_parquet_output_and_settings_guard(reference, tiny_vlm, images, tmp_path):
    target = tmp_path / "caps.parquet"
    s = caption_corpus(tiny_vlm, str(images), str(target), n=2, sampling=SAMPLING, shard_size=4)
    assert s["captions_file"] == str(target) and not (tmp_path / "caps.parquet.parts").exists()
    # Shard size does not change any caption: captions depend on the image and seed only.
    assert read_captions(target) == reference["captions"]
    from prism_eval.engines.files import FileCaptioner

    assert FileCaptioner(target).captions == reference["captions"]
    again = caption_corpus(tiny_vlm, str(images), str(target), n=2, sampling=SAMPLING, shard_size=4)
    assert again["computed_shards"] == 0
    with pytest.raises(CorpusError, match="other settings"):
        caption_corpus(tiny_vlm, str(images), str(target), n=1, sampling=SAMPLING, shard_size=4)


@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}})
    yield ray
    ray.shutdown()


def test_ray_two_workers_match_single_process(ray_local, reference, tiny_vlm, images, tmp_path):
    logs: list[str] = []
    out = tmp_path / "ray-out"
    s = caption_corpus(tiny_vlm, str(images), str(out), n=2, sampling=SAMPLING, shard_size=2, use_ray=True,
                       workers=2, log=logs.append)
    assert s["computed_shards"] == 5 and s["captioned"] == N_IMAGES
    assert read_captions(out) == reference["captions"]
    for i in range(5):  # byte-for-byte the same rows, shard by shard
        name = f"data/shard-{i:05d}-of-00005.parquet"
        import pyarrow.parquet as pq

        assert pq.read_table(out / name).to_pylist() == pq.read_table(reference["out"] / name).to_pylist()
    pids = {line.rsplit("pid ", 1)[1].rstrip(")") for line in logs if "ray worker pid" in line}
    assert len(pids) == 2 and str(os.getpid()) not in pids  # two actors did the work, not this process


# Runs `prism-eval caption` in a child process that holds (reads stdin) after writing its 2nd shard, so the
# test can kill it mid-run at a known point; the hold lives here, not in the package.
_HOLD_AFTER_TWO_SHARDS = """
import sys
from prism_eval.corpus import shards, run
written = []
original = shards.write_shard
def write_then_hold(*args, **kwargs):
    original(*args, **kwargs)
    written.append(1)
    if len(written) >= 2:
        sys.stdin.read()
run.write_shard = write_then_hold
from prism_eval.cli import main
main(sys.argv[1:])
"""


def _cli(tiny_vlm: str, images: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-c", _HOLD_AFTER_TWO_SHARDS, "caption", "--captioner", tiny_vlm, "--images",
            str(images), "--out", str(out), "--n", "2", "--temperature", "0.7", "--top-p", "0.9",
            "--max-new-tokens", "8", "--seed", "3", "--shard-size", "2", *extra]


@pytest.mark.parametrize("resume_with_ray", [False, True])
def test_resume_after_kill_without_recomputing(ray_local, reference, tiny_vlm, images, tmp_path, resume_with_ray):
    out = tmp_path / "killed"
    shards = out / "data"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(_cli(tiny_vlm, images, out), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    try:
        # The run holds after its 2nd shard (see _HOLD_AFTER_TWO_SHARDS); wait for those files, bounded by the process itself.
        while len(list(shards.glob("shard-*.parquet"))) < 2:
            try:
                proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                continue
            pytest.fail(f"caption run ended early ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}")
        proc.kill()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    done = sorted(shards.glob("shard-*.parquet"))
    assert len(done) == 2 and not (out / "captions.jsonl").exists()
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in done}

    logs: list[str] = []
    s = caption_corpus(tiny_vlm, str(images), str(out), n=2, sampling=SAMPLING, shard_size=2,
                       use_ray=resume_with_ray, workers=2, log=logs.append)
    assert s["skipped_shards"] == 2 and s["computed_shards"] == 3
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in done} == before  # untouched
    redone = {line.split(":")[0] for line in logs if line.startswith("shard ")}
    assert redone == {"shard 3/5", "shard 4/5", "shard 5/5"}
    assert read_captions(out) == reference["captions"]


def test_bad_inputs_are_one_line_errors(tmp_path, tiny_vlm):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CorpusError, match="no image files"):
        caption_corpus(tiny_vlm, str(empty), str(tmp_path / "o"))
    with pytest.raises(CorpusError, match="no such folder"):
        caption_corpus(tiny_vlm, str(tmp_path / "missing"), str(tmp_path / "o"))
    with pytest.raises(CorpusError, match="--shard-size"):
        caption_corpus(tiny_vlm, str(empty), str(tmp_path / "o"), shard_size=0)


def test_saved_dataset_input_with_ids_and_embedded_images(reference, tiny_vlm, images, tmp_path):
    """A `save_to_disk` dataset captions like the same images in a folder; --embed-images keeps the bytes."""
    import datasets
    import pyarrow.parquet as pq

    files = sorted(images.rglob("img*.png"))
    ds = datasets.Dataset.from_dict({"name": [f"ds-{p.stem}" for p in files],
                                     "image": [str(p) for p in files]}).cast_column("image", datasets.Image())
    ds.save_to_disk(str(tmp_path / "saved"))
    out = tmp_path / "from-ds"
    s = caption_corpus(tiny_vlm, str(tmp_path / "saved"), str(out), n=2, sampling=SAMPLING, shard_size=4,
                       id_column="name", embed_images=True)
    assert s["captioned"] == len(files) and s["unreadable"] == 0
    got = read_captions(out)
    by_name = {f"ds-{p.stem}": reference["captions"][p.relative_to(images).as_posix()] for p in files}
    assert got == by_name
    rows = [r for f in sorted((out / "data").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert {r["image"]: r["image_bytes"] for r in rows} == {f"ds-{p.stem}": p.read_bytes() for p in files}
    with pytest.raises(CorpusError, match="no column 'nope'"):
        caption_corpus(tiny_vlm, str(tmp_path / "saved"), str(tmp_path / "x"), id_column="nope")
