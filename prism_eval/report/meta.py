"""Run metadata as a report shows it: what every run shares once, then per run only what differs.

Why: five runs of one sweep share twenty settings and a configuration; repeating
them per run hides the one or two that differ (the captioner, a seed, a date).
Every value goes through the run's path scrubber, so no local path is shown.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from prism_eval.report.runs import Run

__all__ = ["MetaCard", "MetaView", "build_meta", "MONO_KEYS"]

MONO_KEYS = {"Config hash", "Judge identity", "Run folder", "Captioner spec", "Question sets"}

# (shown name, RunSettings field) in the order a reader checks them.
_SETTINGS = (("Judge", "judge"), ("Judge identity", "judge_identity"), ("Protocol", "protocol"),
             ("Scoring", "scoring"), ("Estimator", "estimator"), ("Option normalisation", "option_norm"),
             ("Compatibility", "compat"), ("Option orders per question", "permutations"),
             ("Captions per image", "num_captions"), ("Caption prompt", "caption_prompt"),
             ("Caption temperature", "caption_temperature"), ("Caption top-p", "caption_top_p"),
             ("Caption max tokens", "caption_max_tokens"), ("CapRL label quirk", "label_quirk"), ("Seed", "seed"),
             ("Question limit", "limit"))


@dataclass
class MetaCard:
    label: str
    items: list[tuple[str, str, bool]]  # (key, value, differs between runs)


@dataclass
class MetaView:
    shared: list[tuple[str, str]]  # identical in every run
    cards: list[MetaCard]
    config: str  # the configuration keys every run shares, as JSON
    mono: set[str] = field(default_factory=lambda: set(MONO_KEYS))


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _run_items(r: Run) -> list[tuple[str, str]]:
    """Every (key, value) a reader may need about one run, in display order."""
    items = [("Captioner spec", r.spec), ("Run folder", r.folder)]
    items += [(name, r.shown(_text(getattr(r.settings, attr)))) for name, attr in _SETTINGS]
    items += [("Benchmarks", ", ".join(f"{b} (n={res.n})" for b, res in r.benchmarks.items())),
              ("Benchmark sources", ", ".join(f"{b}: {r.shown(res.source) or '—'}" for b, res in r.benchmarks.items())),
              ("Question sets", ", ".join(f"{b}: {q or 'not recorded'}" for b, q in r.settings.question_sets.items())
               or "not recorded"),
              ("Samples", f"{len(r.samples)} in samples.jsonl" if r.samples is not None else "no samples.jsonl"),
              ("Config hash", _text(r.config.get("config_hash"))), ("Created", r.created or "—"),
              ("Complete", "yes" if r.complete else "no (partial run)")]
    items += [(f"version: {k}", r.shown(v)) for k, v in r.versions.items()]
    return items


def _config_keys(runs: list[Run]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(config keys with one value in every run, each run's other keys), local paths rewritten."""
    configs = [r.shown_value(r.config) for r in runs]
    keys: list[str] = []
    for c in configs:
        keys.extend(k for k in c if k not in keys)
    shared = {k: configs[0][k] for k in keys if all(k in c and c[k] == configs[0][k] for c in configs)}
    rest = [{k: v for k, v in c.items() if k not in shared} for c in configs]
    return shared, rest


def build_meta(runs: list[Run]) -> MetaView:
    """Shared settings once, a card per run with what differs (all of it for a single run: it shares with none)."""
    per_run = [dict(_run_items(r)) for r in runs]
    keys: list[str] = []
    for items in per_run:
        keys.extend(k for k in items if k not in keys)
    several = len(runs) > 1
    differing = {k for k in keys if len({items.get(k, "—") for items in per_run}) > 1}
    shared = [(k, per_run[0].get(k, "—")) for k in keys if k not in differing]
    config_shared, config_rest = _config_keys(runs)
    cards = []
    for r, items, extra in zip(runs, per_run, config_rest):
        rows = [(k, items.get(k, "—"), several) for k in keys if k in differing]
        rows += [(f"config: {k}", json.dumps(v, ensure_ascii=False, default=str), several) for k, v in extra.items()]
        if not several:
            rows = [("Captioner spec", r.spec, False), ("Run folder", r.folder, False)]
        cards.append(MetaCard(label=r.label, items=rows))
    if not several:
        shared = [(k, v) for k, v in shared if k not in ("Captioner spec", "Run folder")]
    return MetaView(shared=shared, cards=cards,
                    config=json.dumps(config_shared, indent=2, sort_keys=True, ensure_ascii=False, default=str))
