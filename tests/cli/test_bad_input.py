"""A corpus of malformed inputs, each run through the real `prism-eval` command in a subprocess.

Every case is built here from scratch (images, benchmark lines, caption files) and
ends in one of the documented outcomes (README, "Reliability and safety"):
- error:   exit status 1 and exactly one line on stderr, "Error: <file>:<line>: <problem>";
- flagged: the run finishes, the item is `failed` in results.json and samples.jsonl, exit 3;
- works:   odd but valid input (CMYK, 16-bit, palette, alpha...) is converted and scored.
None may end in a Python traceback.
"""
from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import sys
import traceback
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CLI = [sys.executable, "-m", "prism_eval.cli"]


def run_cli(args: list[str], cwd: Path, timeout: float = 600, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess:
    """The installed command in its own process: what a user's shell sees (`env`: variables to add)."""
    env = dict(os.environ, COLUMNS="200", PYTHONWARNINGS="ignore", **(env or {}))
    return subprocess.run(CLI + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def invoke_cli(args: list[str]) -> subprocess.CompletedProcess:
    """The same command in this process (click's runner): an exception that escapes the command is
    reported here as a traceback, exactly what the process would have printed."""
    from click.testing import CliRunner

    from prism_eval.cli import main

    result = CliRunner().invoke(main, args, env={"COLUMNS": "200"})
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "Traceback (most recent call last):\n" + "".join(
            traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, stderr)


# ---- image builders ------------------------------------------------------------------------
def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _noise(size=(48, 40)) -> Image.Image:
    return Image.effect_noise(size, 64).convert("RGB")


def _bomb_png(side: int = 20000) -> bytes:
    """A real decompression bomb: a valid 1-bit PNG of side x side pixels, a few dozen KB on disk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + b"\x00" * ((side + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def _jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kw)
    return buf.getvalue()


# ---- benchmark line builders -----------------------------------------------------------------
def mcq(i: int, image: str, **over) -> dict:
    row = {"id": f"q{i}", "image": image, "question": "What colour dominates the picture?",
           "options": ["red", "green", "blue", "grey"], "answer": "D", "category": "colour"}
    row.update(over)
    return row


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n"
                            for r in rows), encoding="utf-8")
    return path


@dataclass
class Case:
    name: str
    args: list[str]  # benchmark (and captioner) arguments for `prism-eval run`
    expect: str  # a regular expression the one-line error must match
    extra: dict = field(default_factory=dict)


def build_error_corpus(root: Path) -> list[Case]:
    """Inputs that must stop the run before any model call with a one-line error."""
    cases: list[Case] = []
    (root / "img").mkdir(parents=True)
    good = root / "img" / "good.png"
    good.write_bytes(_png(_noise()))
    outside = root.parent / f"{root.name}-outside"
    (outside / "sub").mkdir(parents=True, exist_ok=True)
    (outside / "secret.png").write_bytes(_png(_noise()))
    (outside / "sub" / "x.png").write_bytes(_png(_noise()))

    def bench(name: str, rows: list, expect: str, image: tuple[str, bytes] | None = None) -> None:
        folder = root / name
        folder.mkdir()
        (folder / "img").mkdir()
        (folder / "img" / "good.png").write_bytes(good.read_bytes())
        if image is not None:
            (folder / image[0]).parent.mkdir(parents=True, exist_ok=True)
            (folder / image[0]).write_bytes(image[1])
        path = write_jsonl(folder / "bench.jsonl", rows)
        cases.append(Case(name, ["--benchmark", str(path)], expect.replace("BENCH", re.escape(str(path)))))

    full = _png(_noise((64, 64)))
    bench("truncated_png", [mcq(1, "img/t.png")], r"BENCH:1: image 'img/t\.png' cannot be decoded",
          ("img/t.png", full[: len(full) // 2]))
    bench("corrupt_bytes", [mcq(1, "img/c.jpg")], r"BENCH:1: image 'img/c\.jpg' cannot be decoded",
          ("img/c.jpg", b"\xff\xd8\xff\xe0" + bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8))))
    bench("text_named_png", [mcq(1, "img/t.png")], r"BENCH:1: image 'img/t\.png' cannot be decoded: not an image format",
          ("img/t.png", b"this is not an image\n"))
    bench("empty_image_file", [mcq(1, "img/e.png")], r"BENCH:1: image 'img/e\.png' cannot be decoded: .*\(0 bytes\)",
          ("img/e.png", b""))
    bench("decompression_bomb", [mcq(1, "img/bomb.png")],
          r"BENCH:1: image 'img/bomb\.png' is too large to decode safely .*decompression bomb",
          ("img/bomb.png", _bomb_png()))
    bench("huge_over_limit", [mcq(1, "img/huge.png")],
          r"BENCH:1: image 'img/huge\.png' is 9000x8000 pixels, over the 64,000,000-pixel limit",
          ("img/huge.png", _png(Image.new("1", (9000, 8000)))))
    bench("missing_image", [mcq(1, "img/good.png"), mcq(2, "img/nope.png")],
          r"BENCH:2: image 'img/nope\.png' does not exist")
    bench("dotdot_escape", [mcq(1, "../../etc/passwd")],
          r"BENCH:1: image path '\.\./\.\./etc/passwd' escapes the benchmark folder")
    bench("absolute_path", [mcq(1, "/etc/passwd")], r"BENCH:1: image path '/etc/passwd' is absolute")
    bench("home_path", [mcq(1, "~/.ssh/id_rsa")], r"BENCH:1: image path '~/\.ssh/id_rsa' is absolute")
    bench("nul_in_path", [mcq(1, "img/good.png\u0000.txt")],
          r"BENCH:1: image path 'img/good\.png\\x00\.txt' cannot be used: ValueError: embedded null byte")
    bench("image_is_folder", [mcq(1, "img")], r"BENCH:1: image 'img' is not a file")
    # symlinks that point out of the benchmark folder: a file and a folder
    folder = root / "symlink_file_out"
    folder.mkdir()
    (folder / "img").mkdir()
    (folder / "img" / "link.png").symlink_to(outside / "secret.png")
    path = write_jsonl(folder / "bench.jsonl", [mcq(1, "img/link.png")])
    cases.append(Case("symlink_file_out", ["--benchmark", str(path)],
                      re.escape(str(path)) + r":1: image path 'img/link\.png' escapes the benchmark folder"))
    folder = root / "symlink_dir_out"
    folder.mkdir()
    (folder / "linked").symlink_to(outside / "sub", target_is_directory=True)
    path = write_jsonl(folder / "bench.jsonl", [mcq(1, "linked/x.png")])
    cases.append(Case("symlink_dir_out", ["--benchmark", str(path)],
                      re.escape(str(path)) + r":1: image path 'linked/x\.png' escapes the benchmark folder"))

    bench("malformed_json", [mcq(1, "img/good.png"), '{"id": "q2", "image": "img/good.png", "question": '],
          r"BENCH:2: malformed JSON \(.+ at column \d+\)")
    bench("line_not_object", [mcq(1, "img/good.png"), "[1, 2, 3]"], r"BENCH:2: each line must be a JSON object")
    bench("missing_answer", [{k: v for k, v in mcq(1, "img/good.png").items() if k != "answer"}],
          r"BENCH:1: missing 'answer'")
    bench("duplicate_ids", [mcq(1, "img/good.png"), mcq(2, "img/good.png"), mcq(1, "img/good.png")],
          r"BENCH:3: duplicate id 'q1' \(first on line 1\)")
    bench("one_option", [mcq(1, "img/good.png", options=["red"], answer="A")],
          r"BENCH:1: a multiple-choice question needs at least 2 options, got 1")
    bench("too_many_options", [mcq(1, "img/good.png", options=[f"option {i}" for i in range(27)], answer="A")],
          r"BENCH:1: 27 options; at most \d+ are supported")
    bench("answer_outside_options", [mcq(1, "img/good.png", answer="E")],
          r"BENCH:1: answer 'E' is not one of the option letters A-D")
    bench("answer_not_a_letter", [mcq(1, "img/good.png", answer="purple")],
          r"BENCH:1: answer 'purple' is not one of the option letters A-D or the exact text of one option")
    bench("options_not_a_list", [mcq(1, "img/good.png", options="red, green")],
          r"BENCH:1: 'options' must be a list of strings")
    bench("options_hold_objects", [mcq(1, "img/good.png", options=[{"text": "red"}, "green"])],
          r"BENCH:1: 'options' must be a list of strings")
    bench("question_not_text", [mcq(1, "img/good.png", question=42)], r"BENCH:1: 'question' must be a string")
    bench("image_not_text", [mcq(1, ["img/good.png"])], r"BENCH:1: 'image' must be a path string")
    bench("targets_not_a_list", [{"id": "o1", "image": "img/good.png", "question": "Colour?", "answer": "grey",
                                  "targets": 5}], r"BENCH:1: 'targets' must be a list of strings")
    bench("unknown_metric", [{"id": "o1", "image": "img/good.png", "question": "Colour?", "answer": "grey",
                              "metric": "bleu9000"}], r"BENCH:1: unknown metric 'bleu9000'")
    # non-UTF-8 text on line 2 (Latin-1 bytes)
    folder = root / "non_utf8"
    folder.mkdir()
    (folder / "img").mkdir()
    (folder / "img" / "good.png").write_bytes(good.read_bytes())
    path = folder / "bench.jsonl"
    path.write_bytes((json.dumps(mcq(1, "img/good.png")) + "\n").encode()
                     + json.dumps(mcq(2, "img/good.png", question="Qu'est-ce que c'est ?")).encode()
                     .replace(b"Qu'est", "Qu’est".encode("cp1252")) + b"\n")
    cases.append(Case("non_utf8", ["--benchmark", str(path)], re.escape(str(path)) + r":2: not valid UTF-8 text"))
    for name, content in (("empty_benchmark", b""), ("blank_lines_only", b"\n  \n\t\n")):
        path = root / f"{name}.jsonl"
        path.write_bytes(content)
        cases.append(Case(name, ["--benchmark", str(path)],
                          re.escape(str(path)) + r": the benchmark is empty \(no question lines\)"))
    missing = root / "does-not-exist.jsonl"
    cases.append(Case("benchmark_missing", ["--benchmark", str(missing)],
                      re.escape(str(missing)) + r": benchmark file does not exist"))
    ok = write_jsonl(root / "ok.jsonl", [mcq(1, "img/good.png")])
    cases.append(Case("unknown_metric_option", ["--benchmark", str(ok), "--metric", "bleu9000"],
                      r"--metric: unknown metric 'bleu9000'"))
    # captions files that cannot be read at all: one line, before any judge call
    for name, content, expect in (
            ("captions_malformed_json", b'{"image": "img/good.png", "caption": "grey"}\n{"image": \n',
             r"CAPS:2: malformed JSON"),
            ("captions_non_utf8", b'{"image": "img/good.png", "caption": "gr\xe9y"}\n', r"CAPS:1: not valid UTF-8"),
            ("captions_without_text", b'{"image": "img/good.png", "text": "grey"}\n',
             r"CAPS:1: needs 'caption' \(a string\) or 'captions' \(a list of strings\)"),
            ("captions_missing_file", None, r"CAPS: captions file does not exist")):
        caps = root / f"{name}.jsonl"
        if content is not None:
            caps.write_bytes(content)
        cases.append(Case(name, ["--benchmark", str(ok), "--captioner", f"file:{caps}"],
                          expect.replace("CAPS", re.escape(str(caps))), {"captioner": True}))
    for role in ("captioner", "judge"):
        cases.append(Case(f"unknown_{role}_spec", ["--benchmark", str(ok), f"--{role}", "gpt9:nonsense"],
                          r"model spec 'gpt9:nonsense': unknown form \(use ",
                          {"captioner": role == "captioner"}))
    # a cache database that is not SQLite (a corrupt or foreign file)
    bad_store = root / "not-a-store.sqlite"
    bad_store.write_bytes(b"definitely not sqlite" * 100)
    cases.append(Case("store_not_sqlite", ["--benchmark", str(ok), "--store", str(bad_store)],
                      re.escape(str(bad_store)) + r": cannot open the cache database", {"store": True}))
    blocker = root / "a-file"
    blocker.write_text("x")
    cases.append(Case("store_under_a_file", ["--benchmark", str(ok), "--store", str(blocker / "store.sqlite")],
                      re.escape(str(blocker / "store.sqlite")) + r": cannot open the cache database",
                      {"store": True}))
    return cases


# a few cases also run as a separate process (the rest in-process: the command's start-up costs seconds)
IN_OWN_PROCESS = {"dotdot_escape", "decompression_bomb", "captions_malformed_json", "store_not_sqlite",
                  "unknown_judge_spec"}


@pytest.fixture(scope="module")
def error_corpus(tmp_path_factory) -> list[Case]:
    return build_error_corpus(tmp_path_factory.mktemp("bad") / "corpus")


def test_error_corpus_is_large_enough(error_corpus):
    assert len(error_corpus) >= 20


def test_each_malformed_input_gets_one_clear_line(error_corpus, tmp_path):
    """Run every case through the CLI; collect all mismatches so one failure shows the whole table."""
    problems, report = [], []
    for case in error_corpus:
        args = ["run", *case.args, "--out", str(tmp_path / case.name)]
        if "--captioner" not in args:
            args += ["--captioner", "none"]
        if not case.extra.get("store"):
            args += ["--store", str(tmp_path / "store.sqlite")]
        proc = (run_cli(args, cwd=tmp_path) if case.name in IN_OWN_PROCESS else invoke_cli(args))
        err = proc.stderr.strip()
        # stderr may also hold the final state of a progress bar; the error is one line, the last
        errors = [line for line in err.splitlines() if line.startswith("Error: ")]
        if "Traceback" in proc.stdout + proc.stderr:
            problems.append(f"{case.name}: traceback\n{proc.stderr[-2000:]}")
        elif proc.returncode != 1:
            problems.append(f"{case.name}: exit {proc.returncode}, expected 1\n{err[-1000:]}")
        elif len(errors) != 1 or not err.endswith(errors[0]):
            problems.append(f"{case.name}: not one error line: {err[-1000:]!r}")
        elif not re.search(case.expect, errors[0]):
            problems.append(f"{case.name}: {errors[0]!r} does not match {case.expect!r}")
        report.append((case.name, proc.returncode, errors[0] if errors else err[-200:]))
    for name, code, line in report:  # the table the README quotes (pytest -s shows it)
        print(f"| {name} | exit {code} | {line.replace(str(tmp_path), '<tmp>')} |")
    assert not problems, "\n".join(problems)
    # each stopped before writing results
    assert not any((tmp_path / case.name / "results.json").exists() for case in error_corpus)


# ---- odd but valid inputs: converted and scored ---------------------------------------------
def build_odd_but_valid(root: Path) -> tuple[Path, dict[str, str]]:
    """One benchmark whose images use every awkward mode; returns it and {image: how it is odd}."""
    (root / "img").mkdir(parents=True)
    base = _noise((60, 40))
    arr16 = (np.arange(40 * 60, dtype=np.uint32).reshape(40, 60) * 27).astype(np.uint16)
    pal = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    exif_img = base.copy()
    exif = exif_img.getexif()
    exif[0x0112] = 6  # rotated 90 degrees
    frames = [Image.new("RGB", (32, 32), c) for c in ("red", "blue", "green")]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)

    def save(name: str, img: Image.Image, fmt: str, **kw) -> bytes:
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        (root / "img" / name).write_bytes(buf.getvalue())
        return buf.getvalue()

    images = {
        "cmyk.jpg": ("CMYK JPEG", lambda n: save(n, base.convert("CMYK"), "JPEG")),
        "gray16.png": ("16-bit greyscale PNG", lambda n: save(n, Image.fromarray(arr16), "PNG")),
        "palette_transparent.png": ("palette PNG with a transparent index",
                                    lambda n: save(n, pal, "PNG", transparency=0)),
        "rgba.png": ("RGBA PNG", lambda n: save(n, base.convert("RGBA"), "PNG")),
        "la.png": ("greyscale + alpha PNG", lambda n: save(n, base.convert("LA"), "PNG")),
        "bilevel.png": ("1-bit PNG", lambda n: save(n, base.convert("1"), "PNG")),
        "float.tiff": ("32-bit float TIFF", lambda n: save(n, Image.fromarray(
            np.linspace(0, 1, 40 * 60, dtype=np.float32).reshape(40, 60)), "TIFF")),
        "exif_rotated.jpg": ("JPEG with an EXIF rotation", lambda n: save(n, exif_img, "JPEG", exif=exif)),
        "animated.gif": ("animated GIF", lambda n: (root / "img" / n).write_bytes(gif.getvalue())),
        "big.png": ("5000x4000 image (downscaled before captioning)",
                    lambda n: save(n, Image.new("L", (5000, 4000), 128), "PNG")),
    }
    kinds = {}
    rows = []
    for i, (name, (kind, make)) in enumerate(images.items()):
        make(name)
        kinds[f"img/{name}"] = kind
        rows.append(mcq(i, f"img/{name}"))
    # odd text that is still valid: a raw U+2028 and U+0085 inside a JSON string, a lower-case answer
    # letter, a path that wanders inside the folder, CRLF line ends and a byte-order mark
    rows.append(mcq(100, "img/../img/cmyk.jpg", question="Line\u2028separator and next\u0085line: which colour?"))
    rows.append(mcq(101, "img/rgba.png", answer="d"))
    text = "".join(json.dumps(r, ensure_ascii=False) + "\r\n" for r in rows)
    path = root / "odd.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    return path, kinds


def test_odd_but_valid_images_and_text_are_converted_and_scored(tmp_path, tiny_llava_dir, tiny_lm_dir):
    bench, kinds = build_odd_but_valid(tmp_path / "odd")
    out = tmp_path / "out"
    proc = run_cli(["run", "--benchmark", str(bench), "--captioner", f"hf:{tiny_llava_dir}",
                    "--judge", f"hf:{tiny_lm_dir}", "--caption-max-tokens", "6", "--caption-temperature", "0",
                    "--store", str(tmp_path / "store.sqlite"), "--out", str(out)], cwd=tmp_path)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())["benchmarks"]["odd"]
    lines = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert results["failed"] == 0 and results["n"] == len(kinds) + 2
    assert {line["image"] for line in lines} == set(kinds) | {"img/../img/cmyk.jpg"}
    assert all(line["status"] != "failed" for line in lines)
    # every image went through the captioner's pixel path once
    assert re.search(rf"\b{len(kinds) + 1} captioner calls", proc.stderr), proc.stderr[-500:]
    assert all(line["thumb"] for line in lines), "a thumbnail (RGB JPEG) is written for every image"
    text_line = next(line for line in lines if line["question_id"] == "q100")
    assert "\u2028" in text_line["question"] and "\u0085" in text_line["question"]


# ---- flagged items: the run finishes, the item is failed, the exit status says incomplete ------
def test_captions_file_missing_images_flags_those_items(tmp_path, tiny_lm_dir):
    root = tmp_path / "b"
    (root / "img").mkdir(parents=True)
    rows = []
    for i in range(4):
        (root / "img" / f"{i}.png").write_bytes(_png(_noise((32 + i, 32))))
        rows.append(mcq(i, f"img/{i}.png"))
    bench = write_jsonl(root / "bench.jsonl", rows)
    caps = write_jsonl(root / "caps.jsonl", [{"image": f"img/{i}.png", "caption": "A grey, noisy picture."}
                                             for i in (0, 2)])
    out = tmp_path / "out"
    proc = run_cli(["run", "--benchmark", str(bench), "--captioner", f"file:{caps}", "--judge", f"hf:{tiny_lm_dir}",
                    "--store", str(tmp_path / "store.sqlite"), "--out", str(out)], cwd=tmp_path)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "incomplete" in proc.stderr
    summary = json.loads((out / "results.json").read_text())
    assert summary["complete"] is False
    assert summary["benchmarks"]["bench"]["failed"] == 2 and summary["benchmarks"]["bench"]["n"] == 2
    lines = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    failed = {line["image"]: line for line in lines if line["status"] == "failed"}
    assert set(failed) == {"img/1.png", "img/3.png"}
    assert all(f"no caption for image '{k}'" in v["error"] for k, v in failed.items())
    assert "(2 failed)" in proc.stdout  # the leaderboard shows it next to the score


def test_truncated_jpeg_is_flagged_when_the_captioner_decodes_it(tmp_path, tiny_llava_dir, tiny_lm_dir):
    """A JPEG cut short passes the header check at load (PIL verifies no JPEG data) and fails at decode."""
    root = tmp_path / "b"
    (root / "img").mkdir(parents=True)
    whole = _jpeg(_noise((64, 64)))
    (root / "img" / "ok.jpg").write_bytes(whole)
    (root / "img" / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    bench = write_jsonl(root / "bench.jsonl", [mcq(1, "img/ok.jpg"), mcq(2, "img/cut.jpg")])
    out = tmp_path / "out"
    proc = run_cli(["run", "--benchmark", str(bench), "--captioner", f"hf:{tiny_llava_dir}",
                    "--judge", f"hf:{tiny_lm_dir}", "--caption-max-tokens", "4", "--caption-temperature", "0",
                    "--store", str(tmp_path / "store.sqlite"), "--out", str(out)], cwd=tmp_path)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.returncode == 3, proc.stderr[-2000:]
    lines = {json.loads(line)["image"]: json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()}
    assert lines["img/ok.jpg"]["status"] != "failed"
    assert lines["img/cut.jpg"]["status"] == "failed"
    assert "image 'img/cut.jpg' cannot be decoded" in lines["img/cut.jpg"]["error"]
