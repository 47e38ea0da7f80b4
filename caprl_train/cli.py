"""`caprl-train`: train a captioner on the caption-utility reward, and curate the QA data it needs.

  caprl-train train --data internlm/CapRL-QA-75K [--model ...] [GRPO, reward, LoRA, eval flags]
  caprl-train curate generate IMAGES --vlm SPEC --out qa.jsonl
  caprl-train curate filter qa.jsonl --vlm SPEC --out qa.filtered.jsonl

Every field of the config dataclasses is a flag (generated from the dataclass,
so the two cannot drift apart); `--config FILE` (JSON or YAML, nested like
TrainConfig) sets values, and flags given on the command line win.
"""
from __future__ import annotations

import dataclasses
import json
import math
import sys
import typing
from pathlib import Path
from typing import Any, Callable, Sequence

import click

from caprl_train.config import DataConfig, EvalSettings, GRPOSettings, LoraSettings, RewardConfig, TrainConfig
from caprl_train.curate import FilterConfig, GenerateConfig
from prism_eval.cli.common import SafeGroup, fail


def _kind(tp: Any) -> tuple[Any, bool]:
    """(base type, optional) of an annotation such as `int | None`."""
    args = typing.get_args(tp)
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return tp, False


def _flag(prefix: str, name: str, rename: dict[str, str]) -> str:
    base = rename.get(name, f"{prefix}{name}")
    return base.replace("_", "-")


def dataclass_options(cls: type, prefix: str = "", rename: dict[str, str] | None = None,
                      skip: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
    """click options for every field of `cls`; each defaults to None (= keep the dataclass default)."""
    rename = rename or {}
    hints = typing.get_type_hints(cls)

    def decorate(fn: Callable) -> Callable:
        for f in reversed(dataclasses.fields(cls)):
            if f.name in skip:
                continue
            tp, _ = _kind(hints[f.name])
            flag = _flag(prefix, f.name, rename)
            dest = flag.replace("-", "_")
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None)  # type: ignore[misc]
            shown = ",".join(default) if isinstance(default, tuple) else default
            help_text = f.metadata.get("help", "") + f"  [default: {shown}]"
            choices = f.metadata.get("choices")
            if tp is bool:
                opt = click.option(f"--{flag}/--no-{flag}", dest, default=None, help=help_text)
            elif typing.get_origin(tp) in (tuple, list):
                opt = click.option(f"--{flag}", dest, multiple=True,
                                   help=help_text + " (repeatable or comma-separated)")
            elif typing.get_origin(tp) is dict:
                opt = click.option(f"--{flag}", dest, multiple=True, help=help_text)
            else:
                ctype = click.Choice(choices) if choices and tp is str else {
                    int: click.INT, float: click.FLOAT}.get(tp, click.STRING)
                opt = click.option(f"--{flag}", dest, type=ctype, default=None, help=help_text)
            fn = opt(fn)
        return fn

    return decorate


def _pairs(values: tuple[str, ...], flag: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint=flag)
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def _check_number(name: str, value: Any, flag: str) -> None:
    """click's FLOAT reads 'nan' and 'inf': a NaN temperature or learning rate would train or sample on
    nothing sensible without a word. Temperatures are also never negative."""
    if isinstance(value, float) and not math.isfinite(value):
        raise click.UsageError(f"{flag} {value}: must be a finite number")
    if isinstance(value, (int, float)) and "temperature" in name and value < 0:
        raise click.UsageError(f"{flag} {value}: a temperature must be 0 or more")


def apply_options(obj: Any, values: dict[str, Any], prefix: str = "", rename: dict[str, str] | None = None,
                  skip: tuple[str, ...] = ()) -> Any:
    """Set the fields of dataclass `obj` from parsed click values that were given (not None / not empty)."""
    rename = rename or {}
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        if f.name in skip:
            continue
        dest = _flag(prefix, f.name, rename).replace("-", "_")
        value = values.get(dest)
        if value is None or value == ():
            continue
        tp, _ = _kind(hints[f.name])
        _check_number(f.name, value, f"--{dest.replace('_', '-')}")
        if typing.get_origin(tp) in (tuple, list):
            value = tuple(part.strip() for v in value for part in str(v).split(",") if part.strip())
        elif typing.get_origin(tp) is dict:
            value = {**getattr(obj, f.name), **_pairs(value, f"--{dest.replace('_', '-')}")}
        setattr(obj, f.name, value)
    return obj


def _from_mapping(obj: Any, data: dict[str, Any], where: str) -> Any:
    names = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in data.items():
        if key not in names:
            raise click.UsageError(f"{where}: unknown setting {key!r} (known: {', '.join(names)})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            _from_mapping(current, value, f"{where}.{key}")
        else:
            setattr(obj, key, tuple(value) if isinstance(current, tuple) and isinstance(value, list) else value)
    return obj


def _read_config(path: str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise click.UsageError(f"--config {path}: file does not exist")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - JSON and YAML raise different types
        raise click.UsageError(f"--config {path}: cannot parse ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise click.UsageError(f"--config {path}: must hold a mapping of settings")
    return data


def _fail(exc: Exception) -> click.ClickException:
    """One `Error:` line: the exception's first line, credentials redacted."""
    return fail(exc)


Pairs = Sequence[tuple[str, str]]


def _preflight(models: Pairs, folders: Pairs = (), files: Pairs = (), datasets: Pairs = (),
               weights: Pairs = ()) -> None:
    """The checks `prism-eval run` makes, before any model loads: every (spec, role) model and every
    (flag, folder or hub id) of weights can be loaded (local folder exists, hub id reachable or cached,
    server answering), every output writable, every hub dataset reachable. Each failure is one line."""
    from prism_eval.engines.hub import check_hub_repo, looks_local
    from prism_eval.io.writable import check_writable_dir, check_writable_file
    from prism_eval.runner.preflight import check_model, check_weights

    try:
        for flag, target in weights:
            check_weights(target, f"{flag} {target}")
        for flag, folder in folders:
            check_writable_dir(folder, flag)
        for flag, file in files:
            check_writable_file(file, flag)
        for spec, role in models:
            check_model(spec, role)  # type: ignore[arg-type]
        for flag, source in datasets:
            if not looks_local(source):
                check_hub_repo(source, "dataset", what=f"{flag} ")
    except (ValueError, RuntimeError) as exc:
        raise _fail(exc) from None


@click.group(cls=SafeGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120})
def main() -> None:
    """Train captioners on the caption-utility reward (CapRL) and curate the QA data it needs."""


# ---- train ----------------------------------------------------------------------------------------

DATA_RENAME = {"source": "data", "split": "split", "image_root": "image_root", "limit": "limit", "prompt": "prompt",
               "image_size": "image_size", "max_image_side": "max_image_side", "min_questions": "min_questions"}
REWARD_RENAME = {"temperature": "judge_temperature", "seed": "reward_seed", "judge": "judge",
                 "protocol": "protocol", "scoring": "scoring", "estimator": "estimator",
                 "questions_per_caption": "questions_per_caption", "shuffle": "shuffle",
                 "cannot_answer": "cannot_answer", "label_quirk": "label_quirk", "length_l1": "length_l1",
                 "length_l2": "length_l2", "length_beta": "length_beta", "judge_batch": "judge_batch",
                 "compat": "compat", "caprl_launcher": "caprl_launcher"}
REWARD_SKIP = ("max_completion_length", "eos_token_ids")
GRPO_RENAME = {"extra": "grpo_arg"}
LORA_RENAME = {"enabled": "lora", "target_modules": "lora_target_modules", "merge_on_save": "merge_lora"}
EVAL_RENAME = {"benchmarks": "eval_benchmark"}
_NESTED = ("data", "grpo", "reward", "lora", "eval")


def _train_options(fn: Callable) -> Callable:
    for deco in (dataclass_options(EvalSettings, "eval_", EVAL_RENAME),
                 dataclass_options(LoraSettings, "lora_", LORA_RENAME),
                 dataclass_options(RewardConfig, "", REWARD_RENAME, REWARD_SKIP),
                 dataclass_options(GRPOSettings, "", GRPO_RENAME),
                 dataclass_options(DataConfig, "", DATA_RENAME)):
        fn = deco(fn)
    return fn


def build_train_config(values: dict[str, Any]):
    """TrainConfig from parsed flags (and --config), flags winning."""
    cfg = TrainConfig()
    if values.get("config"):
        _from_mapping(cfg, _read_config(values["config"]), "--config")
    apply_options(cfg, values, skip=_NESTED)
    apply_options(cfg.data, values, "", DATA_RENAME)
    apply_options(cfg.grpo, values, "", GRPO_RENAME)
    apply_options(cfg.reward, values, "", REWARD_RENAME, REWARD_SKIP)
    apply_options(cfg.lora, values, "lora_", LORA_RENAME)
    apply_options(cfg.eval, values, "eval_", EVAL_RENAME)
    if cfg.reward.questions_per_caption == 0:
        cfg.reward.questions_per_caption = None
    if not cfg.data.source:
        raise click.UsageError("--data is required (a hub id such as internlm/CapRL-QA-75K, or a local path)")
    if cfg.eval.steps and not cfg.eval.benchmarks:
        raise click.UsageError("--eval-steps needs at least one --eval-benchmark")
    if not cfg.eval.benchmarks:
        cfg.eval.at_start = False
    return cfg


@main.command("train")
@click.option("--config", "config", type=click.Path(), default=None,
              help="JSON/YAML settings (nested like TrainConfig)")
@click.option("--print-config", is_flag=True, help="print the resolved settings as JSON and exit")
@dataclass_options(TrainConfig, skip=_NESTED)
@_train_options
def train_cmd(print_config: bool, **values: Any) -> None:
    """GRPO training of a captioner (trl GRPOTrainer) on the caption-utility reward."""
    cfg = build_train_config(values)
    if print_config:
        click.echo(json.dumps(cfg.to_dict(), indent=2, default=str))
        return
    from caprl_train.train import train

    _preflight([(cfg.reward.judge, "judge")], folders=[("--output-dir", cfg.output_dir)],
               datasets=[("--data", cfg.data.source)], weights=[("--model", cfg.model)])
    try:
        result = train(cfg)
    except (ValueError, OSError, RuntimeError) as exc:
        raise _fail(exc) from exc
    last = next((row for row in reversed(result.log_history) if "reward" in row), {})
    click.echo(f"trained {result.steps} steps in {result.seconds:.1f} s; last reward {last.get('reward')}; "
               f"policy saved to {result.output_dir} (evaluate it with --captioner hf:{result.output_dir})")


# ---- curate ---------------------------------------------------------------------------------------

@main.group("curate")
def curate() -> None:
    """Build the multiple-choice QA data the reward needs (CapRL's QA curation)."""


@curate.command("generate")
@click.argument("images", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="training-layout JSONL to write")
@dataclass_options(GenerateConfig)
def curate_generate(images: str, out: str, **values: Any) -> None:
    """A VLM writes multiple-choice questions about each image (CapRL's published prompt).

    IMAGES is a folder (searched recursively), one image, or a .txt file listing image paths.
    """
    from caprl_train.curate import CurateError, generate_qa

    cfg = apply_options(GenerateConfig(), values)
    _preflight([(cfg.vlm, "captioner")], files=[("--out", out)])
    try:
        report = generate_qa(images, out, cfg)
    except (CurateError, ValueError, OSError, RuntimeError) as exc:
        raise _fail(exc) from exc
    click.echo(f"{report.images} images: {report.questions} questions parsed on {report.images_with_questions} "
               f"images; {report.unparsed_images} images gave none; {report.rejected_blocks} question blocks "
               f"could not be read ({report.seconds:.1f} s)")
    for problem, count in report.problems.most_common(5):
        click.echo(f"  {count} x {problem}")
    click.echo(f"wrote {out}, {out}.raw.jsonl (every output) and {out}.report.json")
    if report.questions == 0:  # an empty training file is a failed step, whatever wrote it
        raise click.ClickException(f"{images}: no question could be read from any image's output "
                                   f"(see {out}.raw.jsonl for what the VLM wrote)")


@curate.command("filter")
@click.argument("qa_file", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="training-layout JSONL of the kept questions")
@click.option("--image-root", default=None, type=click.Path(), help="resolve relative image paths here")
@dataclass_options(FilterConfig)
def curate_filter(qa_file: str, out: str, image_root: str | None, **values: Any) -> None:
    """Keep questions answerable with the image and not without it (CapRL's filter)."""
    from caprl_train.curate import CurateError, filter_qa
    from caprl_train.data import DataError

    try:
        cfg = apply_options(FilterConfig(), values)
        cfg.__post_init__()
    except ValueError as exc:
        raise _fail(exc) from exc
    from prism_eval.engines.dp import NO_REPLICAS
    from prism_eval.engines.registry import ModelSpecError, parse_model_spec

    try:
        kind = parse_model_spec(cfg.vlm, "captioner").kind
    except ModelSpecError as exc:
        raise _fail(exc) from None
    if kind in NO_REPLICAS:
        raise click.ClickException(f"--vlm {cfg.vlm}: filtering asks a model that sees the images; give one "
                                   "(hf:, vllm:, openai:)")
    _preflight([(cfg.vlm, "captioner")], files=[("--out", out)])
    try:
        report = filter_qa(qa_file, out, cfg, image_root=image_root)
    except (CurateError, DataError, ValueError, OSError, RuntimeError) as exc:
        raise _fail(exc) from exc
    click.echo(f"{report.questions} questions on {report.images} images: kept {report.kept_questions} on "
               f"{report.kept_images} images ({report.seconds:.1f} s)")
    for reason, count in report.reasons.most_common():
        click.echo(f"  {count} x {reason}")
    click.echo(f"wrote {out}, {out}.stats.jsonl (every question) and {out}.report.json")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
