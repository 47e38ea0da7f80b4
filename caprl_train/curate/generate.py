"""`caprl-train curate generate`: a VLM writes multiple-choice questions about each image (CapRL's prompt).

Every image gets the published system prompt (gen_qa.py, typos kept), sampled at
temperature 0.1; `caprl_train.curate.parse.parse_mcqs` reads the questions and
every problem it meets is reported. Engines without a system-message hook get
the system prompt prepended to the user turn (recorded in the report), and
repetition_penalty=1.05 is not applied.
"""
from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from caprl_train.config import setting
from caprl_train.curate.common import CurateError, _ask, _jsonl, _open, find_images, with_system_prompt
from caprl_train.curate.parse import parse_mcqs
from caprl_train.data import training_row
from prism_eval.core.records import ImageRef, Sampling

# QA_data_curation/1_generate_qa/gen_qa.py, verbatim ("challenge", "quesiton" and the trailing spaces are original).
GENERATE_SYSTEM_PROMPT = (
    "Your task is to generate five multiple-choice questions and their answers about the object based on the "
    "provided image.\n"
    "The questions should be challenge and focus on the image content, you answer should strictly follow the "
    "following format:\n"
    "#### 1. **Which method achieves the highest accuracy (Acc) on the FF++ (HQ) dataset?**\n"
    "   - A) Method \"a\"\n"
    "   - B) Method \"b\"\n"
    "   - C) Method \"c\"\n"
    "   - D) Ours\n"
    "\n"
    "**Answer:** D) Ours   \n"
    "------\n"
    "#### 2. **What is the primary color of the kayak in the image?**\n"
    "   - A) Blue\n"
    "   - B) Red\n"
    "   - C) Black\n"
    "   - D) White\n"
    "\n"
    "**Answer:** B) Red \n"
    "------\n"
    "You should strictly follow the above format and should not generate irrelevant sentences. All the quesiton "
    "should be answered based on the image."
)
GENERATE_USER_TEXT = "Here is the image"
GENERATE_SAMPLING = Sampling(temperature=0.1, top_p=1.0, max_new_tokens=2048)


@dataclass
class GenerateConfig:
    vlm: str = setting("Qwen/Qwen2.5-VL-72B-Instruct", "VLM spec (hf:, vllm:, openai:<model>@<url>; "
                                                         "file:<outputs.jsonl> re-parses saved outputs)")
    limit: int | None = setting(None, "use only the first N images")
    batch_size: int = setting(8, "images per VLM call")
    temperature: float = setting(GENERATE_SAMPLING.temperature, "VLM temperature (CapRL: 0.1)")
    max_new_tokens: int = setting(GENERATE_SAMPLING.max_new_tokens, "VLM output tokens")
    seed: int = setting(0, "sampling seed")
    expected_questions: int = setting(5, "questions asked per image (CapRL: 5)")


@dataclass
class GenerateReport:
    images: int = 0
    images_with_questions: int = 0
    questions: int = 0
    rejected_blocks: int = 0
    unparsed_images: int = 0
    problems: Counter = field(default_factory=Counter)
    wrong_count: int = 0  # images whose question count differs from expected_questions
    system_prompt: str = ""
    seconds: float = 0.0
    out: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["problems"] = dict(self.problems.most_common())
        return d


def _problem_kind(problem: str) -> str:
    """A problem without its specifics ("question 3: no answer line" -> "no answer line"), for counting."""
    kind = re.sub(r"^question \d+: ", "", problem)
    return re.split(r" \(|'", kind, maxsplit=1)[0].strip()


def _check_saved_outputs(captioner: Any, items: list, vlm: str) -> None:
    """`--vlm file:` re-parses saved outputs: every image needs one, found before anything is written."""
    lookup = getattr(captioner, "lookup", None)
    if lookup is None:
        return
    missing = [it.id for it in items if lookup([ImageRef(key=it.id, sha256="", path=str(it.path))]) is None]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise CurateError(f"--vlm {vlm}: no saved output for image {missing[0]!r}{more}")


def generate_qa(images: str | Path, out: str | Path, cfg: GenerateConfig, captioner: Any = None,
                progress: Callable[[int], None] | None = None) -> GenerateReport:
    """Ask the VLM for questions about every image; write the training layout and a raw-output file.

    Writes `out` (images with >= 1 parsed question), `<out>.raw.jsonl` (every image: raw text and the
    parser's problems) and `<out>.report.json`.
    """
    from prism_eval.engines.registry import load_captioner

    out = Path(out)
    items = find_images(images, out.parent, cfg.limit)
    if captioner is None:
        captioner = load_captioner(cfg.vlm)
    _check_saved_outputs(captioner, items, cfg.vlm)
    captioner, how = with_system_prompt(captioner, GENERATE_SYSTEM_PROMPT)
    user = GENERATE_USER_TEXT if how == "system-message" else f"{GENERATE_SYSTEM_PROMPT}\n\n{GENERATE_USER_TEXT}"
    sampling = Sampling(temperature=cfg.temperature, top_p=1.0, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    report = GenerateReport(images=len(items), system_prompt=how, out=str(out))
    start = time.perf_counter()
    rows, raw_rows = [], []
    for first in range(0, len(items), cfg.batch_size):
        chunk = items[first:first + cfg.batch_size]
        if getattr(captioner, "needs_pixels", True):
            images_in = [[_open(it.path)] for it in chunk]
        else:  # e.g. file:<outputs.jsonl>: earlier VLM outputs keyed by image id, re-parsed
            images_in = [[ImageRef(key=it.id, sha256="", path=str(it.path))] for it in chunk]
        texts = _ask(captioner, images_in, [user] * len(chunk), sampling, cfg.batch_size, progress)
        for it, text in zip(chunk, texts):
            parsed = parse_mcqs(text)
            report.rejected_blocks += parsed.rejected
            report.problems.update(_problem_kind(p) for p in parsed.problems)
            raw_rows.append({"id": it.id, "image": it.key, "raw": text, "questions": len(parsed.questions),
                             "problems": parsed.problems})
            if not parsed.questions:
                report.unparsed_images += 1
                continue
            if len(parsed.questions) != cfg.expected_questions:
                report.wrong_count += 1
            qs = [dict(q.to_record(), id=f"{it.id}#{k}") for k, q in enumerate(parsed.questions)]
            report.questions += len(qs)
            report.images_with_questions += 1
            rows.append(training_row(it.id, it.key, qs, generator=cfg.vlm))
    report.seconds = time.perf_counter() - start
    _jsonl(out, rows)
    _jsonl(out.with_name(out.name + ".raw.jsonl"), raw_rows)
    out.with_name(out.name + ".report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return report
