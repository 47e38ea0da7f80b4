"""`prism-eval bench judge`: how fast the judge answers CapRL-style questions.

A fixed, seeded workload mirrors the CapRL reward configuration (captions of
about 300 tokens, 8 multiple-choice questions per caption, 4 options plus "Can
not answer based on the caption", options shuffled) and is answered, in one
run and with one loaded model, by:

  reference       the published procedure: one prompt per question with the
                  full caption, generate at most 10 tokens at T=0.6, first [A-I]
  letter-logprob  one scoring pass per question, shared caption prefix
  option-loglik   each option's text scored as the continuation, shared prefix
  generate        greedy decoding of at most 10 tokens (the decisions the
                  letter-logprob argmax is compared with)

Speed is questions per second of wall time; the work each mode really does is
reported as tokens run through the model, relative to the machine's peak
forward throughput measured in the same run.
"""
from __future__ import annotations

import json
import os
import platform
import random
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from prism_eval.core.answers import extract_letter, extract_letter_first
from prism_eval.core.options import ShownOptions, seeded_rng, show_options
from prism_eval.core.protocols import Protocol, get_protocol
from prism_eval.core.records import JudgeRequest, Question, Sampling

REFERENCE_SAMPLING = Sampling(temperature=0.6, top_p=1.0, max_new_tokens=10)  # CapRL's reward server
GREEDY_SAMPLING = Sampling(temperature=0.0, max_new_tokens=10)
QUESTIONS_PER_CAPTION = 8
CAPTION_WORDS = 225  # about 300 tokens for the usual BPE tokenizers

# -- the workload ------------------------------------------------------------------------

_COLORS = ["red", "blue", "green", "yellow", "black", "white", "orange", "purple", "brown", "gray", "pink"]
_MATERIALS = ["wood", "metal", "glass", "plastic", "stone", "leather", "paper", "fabric"]
_PLACES = ["on the left side of the frame", "on the right side of the frame", "in the center of the scene",
           "in the background", "in the foreground", "near the top edge", "near the bottom edge"]
_PLACE_SHORT = ["on the left", "on the right", "in the center", "in the background", "in the foreground",
                "near the top", "near the bottom"]
_OBJECTS = ["car", "bicycle", "dog", "cat", "umbrella", "bench", "lamp", "table", "chair", "boat", "kite",
            "backpack", "bottle", "vase", "clock", "bus", "horse", "tree", "sign", "truck", "cup", "book",
            "guitar", "ladder", "bucket", "basket", "hat", "tent", "drone", "statue"]
_SCENES = ["a busy city street on a weekday morning", "a quiet park in late autumn", "a small harbor at sunset",
           "a cluttered workshop with tools on every wall", "a sunny beach with a few visitors",
           "a kitchen in a family home", "a snowy mountain village", "an open-air market at noon",
           "a school classroom after lessons", "a train platform under a glass roof"]
_WEATHER = ["The sky is clear and the light is warm.", "Heavy clouds cover the sky and the light is flat.",
            "A light rain is falling and the ground is wet.", "Fog softens the outlines of distant shapes.",
            "Bright sunlight casts long, sharp shadows across the ground."]
_FILLER = ["The overall composition feels balanced, with the main subjects spread evenly across the frame.",
           "Several smaller details, such as scattered leaves and faint reflections, add texture to the scene.",
           "People in the distance are too small to make out their faces or clothing clearly.",
           "The photograph appears to be taken at eye level with a standard lens and little distortion.",
           "Colors are natural and slightly muted, suggesting an overcast period of the day.",
           "Nothing in the image suggests motion blur; every edge looks crisp and well defined.",
           "A few signs and posters are visible, but their text is too small to read reliably."]


@dataclass(frozen=True)
class Fact:
    obj: str
    color: str
    material: str
    place: int
    count: int


@dataclass(frozen=True)
class WorkItem:
    caption_index: int
    question: Question
    shown: ShownOptions
    answerable: bool


@dataclass
class Workload:
    seed: int
    captions: list[str]
    items: list[WorkItem]


def _caption(rng: random.Random, facts: list[Fact]) -> str:
    sentences = [f"The image shows {rng.choice(_SCENES)}.", rng.choice(_WEATHER)]
    for f in facts:
        place = _PLACES[f.place]
        if f.count == 1:
            article = "An" if f.color[0] in "aeiou" else "A"
            sentences.append(f"{article} {f.color} {f.obj} made of {f.material} stands {place}.")
        else:
            sentences.append(f"There are {f.count} {f.color} {f.obj}s {place}, all made of {f.material}.")
        sentences.append(rng.choice([
            f"The {f.obj} looks well used, with small scratches along its edges.",
            f"Next to the {f.obj}, the ground is slightly uneven and partly in shadow.",
            f"The {f.color} color of the {f.obj} stands out against its surroundings.",
            f"Light falls on the {f.obj} from the upper left, leaving a soft shadow.",
        ]))
    fillers = rng.sample(_FILLER, len(_FILLER))
    text = " ".join(sentences)
    while len(text.split()) < CAPTION_WORDS and fillers:
        text += " " + fillers.pop()
    return text


def _questions(rng: random.Random, facts: list[Fact], absent: list[str], ci: int
               ) -> list[tuple[str, list[str], int, bool]]:
    """(question, 4 options, gold index, answerable) for one caption."""
    out = []
    kinds = ["color", "material", "place", "count"]
    for k, f in enumerate(facts[:6]):
        kind = kinds[k % len(kinds)]
        if kind == "count" and f.count == 1:  # a lone object's caption gives no number to ask about
            kind = "color"
        if kind == "color":
            opts = [f.color] + rng.sample([c for c in _COLORS if c != f.color], 3)
            q = f"What color is the {f.obj}?" if f.count == 1 else f"What color are the {f.obj}s?"
        elif kind == "material":
            opts = [f.material] + rng.sample([m for m in _MATERIALS if m != f.material], 3)
            q = f"What is the {f.obj} made of?" if f.count == 1 else f"What are the {f.obj}s made of?"
        elif kind == "place":
            opts = [_PLACE_SHORT[f.place]] + rng.sample([p for i, p in enumerate(_PLACE_SHORT) if i != f.place], 3)
            q = f"Where is the {f.obj} located in the image?"
        else:
            opts = [str(f.count)] + [str(n) for n in rng.sample([n for n in range(1, 8) if n != f.count], 3)]
            q = f"How many {f.obj}s are in the image?"
        out.append((q, opts, 0, True))
    for obj in absent:  # asked about the image, not covered by this caption
        opts = rng.sample(_COLORS, 4)
        out.append((f"What color is the {obj}?", opts, rng.randrange(4), False))
    return out[:QUESTIONS_PER_CAPTION]


def make_workload(n_questions: int, seed: int = 0, protocol: Protocol | None = None) -> Workload:
    """The fixed workload: ceil(n/8) captions, 8 questions each, the first n questions kept."""
    if n_questions < 1:
        raise ValueError(f"--questions must be >= 1 (got {n_questions})")
    protocol = protocol or get_protocol("caprl")
    n_captions = -(-n_questions // QUESTIONS_PER_CAPTION)
    captions, items = [], []
    for ci in range(n_captions):
        rng = seeded_rng(seed, "bench-caption", ci)
        objs = rng.sample(_OBJECTS, 8)
        facts = [Fact(o, rng.choice(_COLORS), rng.choice(_MATERIALS), rng.randrange(len(_PLACES)),
                      rng.choice([1, 1, 2, 3, 4, 5])) for o in objs[:6]]
        captions.append(_caption(rng, facts))
        for qi, (text, opts, gold, answerable) in enumerate(_questions(rng, facts, objs[6:], ci)):
            order = list(range(4))
            rng.shuffle(order)  # the benchmark's own option order, before the protocol's shuffle
            options = tuple(opts[i] for i in order)
            answer = "ABCD"[order.index(gold)]
            q = Question(id=f"c{ci}-q{qi}", text=text, answer=answer, options=options)
            shown = show_options(options, answer, shuffle=protocol.shuffle,
                                 rng=seeded_rng(seed, "bench-shuffle", q.id), cannot_answer=protocol.cannot_answer,
                                 label_quirk=protocol.label_quirk)
            items.append(WorkItem(ci, q, shown, answerable))
    return Workload(seed, captions, items[:n_questions])


# -- measurement helpers -----------------------------------------------------------------

class PeakRSS:
    """Peak resident memory inside a `with` block.

    Linux lets a process reset its high-water mark (/proc/self/clear_refs, 5);
    where that is not allowed, a thread samples RSS every 5 ms instead.
    """

    def __enter__(self) -> "PeakRSS":
        self.start_mb = _rss_mb()
        self.peak_mb = self.start_mb
        self._exact = False
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            self._exact = _hwm_mb() is not None
        except OSError:
            pass
        if not self._exact:
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.005):
            self.peak_mb = max(self.peak_mb, _rss_mb())

    def __exit__(self, *exc: Any) -> None:
        if self._exact:
            self.peak_mb = max(self.peak_mb, _hwm_mb() or 0.0)
        else:
            self._stop.set()
            self._thread.join()
        self.peak_mb = max(self.peak_mb, _rss_mb())


def _status_field(name: str) -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(name + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _hwm_mb() -> float | None:
    return _status_field("VmHWM")


def _rss_mb() -> float:
    rss = _status_field("VmRSS")
    if rss is not None:
        return rss
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def peak_forward_throughput(model: Any, batch: int = 8, seq_len: int = 512, repeats: int = 3,
                            vocab: int | None = None) -> dict[str, Any]:
    """Tokens/s of one large batched forward pass (no cache, last-position logits only), best of repeats."""
    import torch

    vocab = vocab or int(model.config.get_text_config().vocab_size)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(10, vocab, (batch, seq_len), generator=gen).to(model.device)
    best = float("inf")
    sync = torch.cuda.synchronize if ids.device.type == "cuda" else (lambda: None)  # GPU kernels run async
    with torch.inference_mode():
        model(input_ids=ids[:1, :32], logits_to_keep=1)  # warm-up
        for _ in range(repeats):
            sync()
            t0 = time.perf_counter()
            model(input_ids=ids, logits_to_keep=1)
            sync()
            best = min(best, time.perf_counter() - t0)
    return {"tokens_per_s": batch * seq_len / best, "batch": batch, "seq_len": seq_len, "seconds": best}


# -- the modes ---------------------------------------------------------------------------

@dataclass
class ModeResult:
    name: str
    description: str
    questions: int
    seconds: float
    decisions: list[str | None] = field(repr=False)
    peak_rss_mb: float = 0.0
    rss_before_mb: float = 0.0
    model_tokens: int | None = None  # real tokens run through the model
    padded_tokens: int | None = None
    forward_calls: int | None = None
    raw: list[Any] = field(default_factory=list, repr=False)

    @property
    def qps(self) -> float:
        return self.questions / self.seconds if self.seconds > 0 else float("inf")


def _argmax_letter(values: Sequence[float], labels: Sequence[str]) -> str:
    return labels[max(range(len(values)), key=lambda i: values[i])]


def _run_mode(name: str, description: str, judge: Any, n: int,
              call: Callable[[], tuple[list[str | None], list[Any]]], memory: Callable[[], Any] = PeakRSS
              ) -> ModeResult:
    import gc

    gc.collect()
    before = _stats(judge)
    with memory() as mem:
        t0 = time.perf_counter()
        decisions, raw = call()
        seconds = time.perf_counter() - t0
    after = _stats(judge)
    res = ModeResult(name, description, n, seconds, decisions, mem.peak_mb, mem.start_mb, raw=raw)
    if before is not None and after is not None:
        res.model_tokens = after.tokens - before.tokens
        res.padded_tokens = after.padded_tokens - before.padded_tokens
        res.forward_calls = after.forward_calls - before.forward_calls
    return res


def _stats(judge: Any):
    stats = getattr(judge, "stats", None)
    if stats is None:
        return None
    from copy import copy

    return copy(stats)


def _modes(judge: Any, protocol: Protocol, wl: Workload, seed: int
           ) -> dict[str, tuple[str, Callable[[], tuple[list[str | None], list[Any]]]]]:
    mcq = [protocol.mcq_request(wl.captions[it.caption_index], it.question, it.shown) for it in wl.items]
    labels = [list(it.shown.labels) for it in wl.items]
    opt = [protocol.option_request(wl.captions[it.caption_index], it.question, it.shown) for it in wl.items]

    def reference():
        texts = judge.generate(mcq, Sampling(**{**asdict(REFERENCE_SAMPLING), "seed": seed}))
        return [extract_letter_first(t).value for t in texts], texts

    def greedy():
        texts = judge.generate(mcq, GREEDY_SAMPLING)
        return [extract_letter(t, "".join(ls)).value for t, ls in zip(texts, labels)], texts

    def letters():
        lps = judge.letter_logprobs(mcq, labels)
        return [_argmax_letter(v, ls) for v, ls in zip(lps, labels)], lps

    def options():
        rows = judge.option_logliks([r for r, _ in opt], [c for _, c in opt])
        normed = [[lp / max(k, 1) for lp, k in row] for row in rows]
        return [_argmax_letter(v, ls) for v, ls in zip(normed, labels)], rows

    return {
        "reference": ("one prompt per question, generate <=10 tokens at T=0.6, first [A-I] (CapRL)", reference),
        "letter-logprob": ("one scoring pass per question, shared caption prefix, argmax letter", letters),
        "option-loglik": ("option texts scored as continuations (length-normalised), shared prefix", options),
        "generate-greedy": ("one prompt per question, greedy <=10 tokens, letter cascade", greedy),
    }


def _prompt_tokens(judge: Any, requests: Sequence[JudgeRequest]) -> int | None:
    enc = getattr(judge, "encode_prompt", None)
    return sum(len(enc(r)) for r in requests) if enc else None


def _split(wl: Workload, rounds: int) -> list[Workload]:
    """Contiguous groups of whole captions (items are ordered by caption)."""
    n_caps = len(wl.captions)
    rounds = max(1, min(rounds, n_caps))
    bounds = [round(i * n_caps / rounds) for i in range(rounds + 1)]
    parts = []
    for lo, hi in zip(bounds, bounds[1:]):
        items = [it for it in wl.items if lo <= it.caption_index < hi]
        if items:
            parts.append(Workload(wl.seed, wl.captions, items))
    return parts


def _merge(acc: ModeResult | None, part: ModeResult) -> ModeResult:
    if acc is None:
        return part
    acc.questions += part.questions
    acc.seconds += part.seconds
    acc.decisions += part.decisions
    acc.raw += part.raw
    acc.peak_rss_mb = max(acc.peak_rss_mb, part.peak_rss_mb)
    acc.rss_before_mb = min(acc.rss_before_mb, part.rss_before_mb)
    if acc.model_tokens is not None and part.model_tokens is not None:
        acc.model_tokens += part.model_tokens
        acc.padded_tokens = (acc.padded_tokens or 0) + (part.padded_tokens or 0)
        acc.forward_calls = (acc.forward_calls or 0) + (part.forward_calls or 0)
    return acc


def run_judge_bench(judge: Any, n_questions: int = 128, seed: int = 0, rounds: int = 2, warmup: int = 8,
                    peak_batch: int = 8, peak_seq_len: int = 512,
                    log: Callable[[str], None] = lambda _: None,
                    memory: Callable[[], Any] = PeakRSS) -> dict[str, Any]:
    """Run every mode on the workload with one judge; return the figures as a dict.

    The workload is split into `rounds` groups of captions and every mode runs
    on each group in turn (in a rotating order), so a change in machine load
    during the run affects all modes alike. `memory` makes the context manager
    that measures each mode's peak (`peak_mb`, `start_mb`): process RSS by
    default; a GPU benchmark passes one that reads the device's allocator.
    """
    import torch

    protocol = get_protocol("caprl")
    wl = make_workload(n_questions, seed, protocol)
    if warmup:
        warm = make_workload(min(warmup, n_questions), seed + 1, protocol)
        for _, (_, call) in _modes(judge, protocol, warm, seed).items():
            call()
    model = getattr(judge, "model", None)
    can_peak = model is not None and hasattr(model, "config")
    peaks = []
    if can_peak:
        log("measuring peak forward throughput")
        peaks.append(peak_forward_throughput(model, peak_batch, peak_seq_len))
    results: dict[str, ModeResult] = {}
    parts = _split(wl, rounds)
    for r, part in enumerate(parts):
        modes = _modes(judge, protocol, part, seed)
        names = list(modes)
        names = names[r % len(names):] + names[:r % len(names)]
        log(f"round {r + 1}/{len(parts)}: {len(part.items)} questions")
        for name in names:
            desc, call = modes[name]
            res = _run_mode(name, desc, judge, len(part.items), call, memory)
            log(f"  {name}: {res.qps:.2f} questions/s")
            results[name] = _merge(results.get(name), res)
    results = {name: results[name] for name in _modes(judge, protocol, parts[0], seed)}
    if can_peak:
        peaks.append(peak_forward_throughput(model, peak_batch, peak_seq_len))
    peak = max(peaks, key=lambda p: p["tokens_per_s"]) if peaks else None
    ref = results["reference"]
    greedy = results["generate-greedy"].decisions
    golds = [it.shown.gold for it in wl.items]
    answerable = [it.answerable for it in wl.items]
    mcq = [protocol.mcq_request(wl.captions[it.caption_index], it.question, it.shown) for it in wl.items]
    caption_tokens = None
    tok = getattr(judge, "tokenizer", None)
    if tok is not None:
        caption_tokens = sum(len(tok.encode(c, add_special_tokens=False)) for c in wl.captions) / len(wl.captions)
    with_letter = [i for i, (g, it) in enumerate(zip(greedy, wl.items)) if g in it.shown.labels]
    modes_out = {}
    for name, r in results.items():
        agree = sum(1 for i in with_letter if r.decisions[i] == greedy[i])
        correct = sum(1 for d, g, a in zip(r.decisions, golds, answerable) if a and d == g)
        entry: dict[str, Any] = {
            "description": r.description, "questions": r.questions, "seconds": round(r.seconds, 6),
            "questions_per_s": round(r.qps, 4), "ratio_to_reference": round(r.qps / ref.qps, 2),
            "peak_rss_mb": round(r.peak_rss_mb, 1), "rss_before_mb": round(r.rss_before_mb, 1),
            "decided": sum(d is not None for d in r.decisions),
            "agreement_with_greedy": round(agree / len(with_letter), 4) if with_letter else None,
            "agreement_items": len(with_letter),
            "accuracy_answerable": round(correct / max(1, sum(answerable)), 4),
            "cannot_answer_picks": round(sum(1 for d, it in zip(r.decisions, wl.items)
                                             if d is not None and d == it.shown.cannot_answer) / len(wl.items), 4),
        }
        if name == "option-loglik":  # the same numbers under the other normalisation
            by_sum = [_argmax_letter([lp for lp, _ in row], it.shown.labels) for row, it in zip(r.raw, wl.items)]
            entry["accuracy_answerable_sum_norm"] = round(
                sum(1 for d, g, a in zip(by_sum, golds, answerable) if a and d == g) / max(1, sum(answerable)), 4)
        if r.model_tokens is not None:
            tps = r.model_tokens / r.seconds if r.seconds > 0 else 0.0
            entry.update({"model_tokens": r.model_tokens, "padded_tokens": r.padded_tokens,
                          "model_calls": r.forward_calls, "model_tokens_per_s": round(tps, 1),
                          "fraction_of_peak": round(tps / peak["tokens_per_s"], 3) if peak else None})
        modes_out[name] = entry
    prompt_tokens = _prompt_tokens(judge, mcq)
    return {
        "bench": "judge",
        "judge": getattr(judge, "spec", str(judge)),
        "fingerprint": judge.fingerprint() if hasattr(judge, "fingerprint") else None,
        "workload": {"seed": seed, "questions": len(wl.items), "captions": len(wl.captions),
                     "questions_per_caption": QUESTIONS_PER_CAPTION, "options": 4, "cannot_answer_option": True,
                     "shuffled": protocol.shuffle, "protocol": protocol.name, "rounds": len(parts),
                     "mean_caption_tokens": round(caption_tokens, 1) if caption_tokens else None,
                     "mean_prompt_tokens": round(prompt_tokens / len(wl.items), 1) if prompt_tokens else None,
                     "answerable_questions": sum(answerable)},
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "platform": platform.platform(), "python": platform.python_version(),
                    "torch": torch.__version__, "transformers": _version("transformers"),
                    "load_average": _loadavg()},
        "peak_forward": {k: round(v, 3) if isinstance(v, float) else v for k, v in peak.items()} if peak else None,
        "modes": modes_out,
        "targets": {"letter_logprob_ratio_min": 10.0, "agreement_min": 0.99,
                    "letter_logprob_ratio": modes_out["letter-logprob"]["ratio_to_reference"],
                    "agreement": modes_out["letter-logprob"]["agreement_with_greedy"]},
    }


def _version(pkg: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(pkg)
    except Exception:  # noqa: BLE001
        return None


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def to_markdown(result: dict[str, Any]) -> str:
    wl, m = result["workload"], result["machine"]
    lines = [f"# Judge speed: {result['judge']}", "",
             f"Workload: {wl['questions']} questions on {wl['captions']} captions "
             f"({wl['questions_per_caption']} per caption, {wl['options']} options + 'Can not answer', "
             f"shuffled; protocol {wl['protocol']}; seed {wl['seed']}; mean caption {wl['mean_caption_tokens']} "
             f"tokens, mean prompt {wl['mean_prompt_tokens']} tokens); modes interleaved over {wl['rounds']} rounds.",
             f"Machine: {m['cpus']} CPUs, {m['torch_threads']} torch threads, torch {m['torch']}, "
             f"transformers {m['transformers']}, load average at the end {m['load_average']}."]
    if result["peak_forward"]:
        pf = result["peak_forward"]
        lines.append(f"Peak forward throughput: {pf['tokens_per_s']:.0f} tokens/s "
                     f"(one forward pass, batch {pf['batch']} x {pf['seq_len']} tokens).")
    lines += ["", "| mode | questions/s | x reference | seconds | peak RSS (MB) | model tokens | "
                  "tokens/s | % of peak | agreement with greedy | accuracy | 'cannot answer' picked |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, e in result["modes"].items():
        agree = "" if e["agreement_with_greedy"] is None else \
            f"{100 * e['agreement_with_greedy']:.1f}% of {e['agreement_items']}"
        frac = "" if e.get("fraction_of_peak") is None else f"{100 * e['fraction_of_peak']:.0f}%"
        lines.append(f"| {name} | {e['questions_per_s']:.2f} | {e['ratio_to_reference']:.1f} | {e['seconds']:.1f} | "
                     f"{e['peak_rss_mb']:.0f} | {e.get('model_tokens', '')} | {e.get('model_tokens_per_s', '')} | "
                     f"{frac} | {agree} | {100 * e['accuracy_answerable']:.1f}% | "
                     f"{100 * e['cannot_answer_picks']:.1f}% |")
    t = result["targets"]
    measured = "n/a" if t["agreement"] is None else f"{100 * t['agreement']:.1f}%"
    lines += ["", f"Targets: letter-logprob >= {t['letter_logprob_ratio_min']:.0f}x the reference "
                  f"(measured {t['letter_logprob_ratio']:.1f}x); agreement with greedy >= "
                  f"{100 * t['agreement_min']:.0f}% (measured {measured}).",
              "", "Modes:"]
    lines += [f"- **{name}**: {e['description']}" for name, e in result["modes"].items()]
    ref_m, let_m = result["modes"]["reference"], result["modes"]["letter-logprob"]
    if ref_m.get("model_tokens") and let_m.get("model_tokens"):
        ref_t = ref_m["model_tokens"] / ref_m["questions"]
        let_t = let_m["model_tokens"] / let_m["questions"]
        lines += ["", f"Work per question: the reference runs {ref_t:.0f} tokens through the model, letter-logprob "
                      f"{let_t:.0f} ({ref_t / let_t:.1f}x fewer). Each question still needs its own question and "
                      "options plus its share of the caption, so the speed-up is this token ratio times the ratio "
                      "of the two modes' tokens per second."]
        if ref_m.get("fraction_of_peak") and let_m.get("fraction_of_peak"):
            lines[-1] += (f" Here: {ref_t / let_t:.1f} x {let_m['fraction_of_peak'] / ref_m['fraction_of_peak']:.2f} "
                          f"({100 * let_m['fraction_of_peak']:.0f}% against {100 * ref_m['fraction_of_peak']:.0f}% "
                          "of the peak).")
    opt = result["modes"].get("option-loglik", {})
    if "accuracy_answerable_sum_norm" in opt:
        lines += ["", f"option-loglik ranks options by mean log-prob per token (the core's default); ranked by the "
                      f"summed log-prob instead, its accuracy is {100 * opt['accuracy_answerable_sum_norm']:.1f}%."]
    lines += ["", "Accuracy counts only the questions the caption answers; agreement is measured on the "
                  "questions where greedy generation produced one of the shown letters. Tokens are those run "
                  "through the model (a shared prefix counts once); '% of peak' relates them to the peak "
                  "forward throughput above."]
    return "\n".join(lines) + "\n"


def _slug(spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", spec).strip("_") or "judge"


def write_report(result: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"judge_{_slug(result['judge'])}"
    jpath, mpath = out / f"{stem}.json", out / f"{stem}.md"
    jpath.write_text(json.dumps(result, indent=2) + "\n")
    mpath.write_text(to_markdown(result))
    return jpath, mpath
