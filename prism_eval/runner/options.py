"""RunOptions: everything that decides a run's numbers, checked before any model is loaded."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from prism_eval.core.protocols import ESTIMATORS, OPTION_NORMS, PROTOCOLS, SCORING_MODES, Protocol, get_protocol
from prism_eval.core.records import Sampling
from prism_eval.core.utility import UtilityConfig
from prism_eval.runner.length_curve import parse_lengths

BUILTIN_JUDGE = "builtin:smollm2-135m"  # the embedded judge: runs anywhere, offline
COMPAT_MODES: tuple[str, ...] = ("caprl", "prism")


class OptionsError(ValueError):
    """A run setting out of range; the message names the option and the problem."""


@dataclass
class RunOptions:
    """Everything that decides a run's numbers (recorded in results.json), plus how the work is batched."""

    judge: str | None = None  # None: the protocol's own judge (the one its paper used)
    protocol: str = "caprl"
    compat: str | None = None  # "caprl": CapRL's published metric quirks (applied by the benchmark loader)
    scoring: str | None = None  # None: the protocol's default
    estimator: str | None = None  # None: the protocol's default (argmax for generate)
    num_captions: int | None = None  # None: the protocol's default
    limit: int | None = None
    seed: int = 0
    permutations: int = 1
    option_norm: str = "mean"  # option-loglik only: mean, sum, or pmi
    label_quirk: bool = False
    caption_temperature: float | None = None
    caption_max_tokens: int | None = None
    caption_batch: int = 8
    judge_batch: int = 256
    trust_remote_code: bool = False
    data_parallel: int = 1  # engine replicas (one process per GPU group)
    store: str | None = None  # None: $PRISM_EVAL_CACHE/store.sqlite
    # --length-curve: also score every caption cut to k judge tokens ("16,32,64" or ints; not a score setting)
    length_curve: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        try:
            self.length_curve = parse_lengths(self.length_curve)
        except ValueError as exc:
            raise OptionsError(str(exc)) from None
        self.check()
        if self.judge is None:
            self.judge = get_protocol(self.protocol).judge or BUILTIN_JUDGE

    def check(self) -> None:
        """Refuse values that would silently produce a meaningless run (NaN temperatures, zero batches...)."""
        if self.protocol not in PROTOCOLS:
            get_protocol(self.protocol)  # raises with the choices
        _choice("--scoring", self.scoring, SCORING_MODES)
        _choice("--estimator", self.estimator, ESTIMATORS)
        _choice("--option-norm", self.option_norm, OPTION_NORMS)
        _choice("--compat", self.compat, COMPAT_MODES)
        if self.caption_temperature is not None and (not math.isfinite(self.caption_temperature)
                                                     or not 0 <= self.caption_temperature <= 10):
            raise OptionsError(f"--caption-temperature {self.caption_temperature}: must be a number from 0 to 10")
        for name in ("num_captions", "limit", "caption_max_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise OptionsError(f"--{name.replace('_', '-')} {value}: must be at least 1")
        for name in ("permutations", "caption_batch", "judge_batch", "data_parallel"):
            if getattr(self, name) < 1:
                raise OptionsError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be at least 1")
        if self.compat == "caprl" and self.scoring not in (None, "generate"):
            raise OptionsError(f"--compat caprl scores generated answers as CapRL did; --scoring {self.scoring} "
                               "cannot be used with it")
        if self.compat == "prism" and not self.protocol.startswith("prism"):
            raise OptionsError(f"--compat prism reproduces Prism's protocols; --protocol {self.protocol} is not one "
                               "(use prism or prism-query)")
        if self.scoring == "generate" and self.estimator == "expected":
            raise OptionsError("--estimator expected needs a log-probability scoring mode "
                               "(letter-logprob or option-loglik), not generate")

    def resolved_protocol(self) -> Protocol:
        protocol = get_protocol(self.protocol, **({"label_quirk": True} if self.label_quirk else {}))
        sampling = protocol.caption_sampling
        if self.caption_temperature is not None or self.caption_max_tokens is not None:
            sampling = Sampling(temperature=sampling.temperature if self.caption_temperature is None
                                else self.caption_temperature, top_p=sampling.top_p,
                                max_new_tokens=self.caption_max_tokens or sampling.max_new_tokens)
            protocol = replace(protocol, caption_sampling=sampling)
        return protocol

    @property
    def resolved_scoring(self) -> str:
        if self.scoring is None and self.compat == "caprl":
            return "generate"  # CapRL's scoring reads generated text
        protocol = self.resolved_protocol()
        return self.scoring or protocol.scoring_for(self.judge or protocol.judge)

    @property
    def resolved_estimator(self) -> str:
        if self.estimator is None and self.compat == "caprl":
            return "sampled"  # one sampled answer per caption, as CapRL's evaluation asked
        estimator = self.estimator or self.resolved_protocol().default_estimator
        if self.estimator is None and self.resolved_scoring == "generate" and estimator == "expected":
            return "argmax"  # a defaulted estimator adapts; an explicit impossible one is an error
        return estimator

    def captions_per_image(self, protocol: Protocol | None = None) -> int:
        return self.num_captions or (protocol or self.resolved_protocol()).num_captions

    def utility_config(self, answer_format: str = "short", default_metric: str = "exact_match",
                       caprl_family: str = "math") -> UtilityConfig:
        return UtilityConfig(scoring=self.resolved_scoring, estimator=self.resolved_estimator,
                             permutations=self.permutations, option_norm=self.option_norm, seed=self.seed,
                             answer_format=answer_format, default_metric=default_metric, batch_size=self.judge_batch,
                             compat="caprl" if self.compat == "caprl" else None,  # prism's changes no scoring
                             caprl_family=caprl_family)

    def to_config(self) -> dict[str, Any]:
        """The options as recorded in results.json's `config` (the store's path is left out)."""
        out = asdict(self)
        out.pop("store", None)
        if not out["length_curve"]:  # a diagnostic, not a score setting: runs without it record what they did
            out.pop("length_curve")
        return out


def _choice(flag: str, value: str | None, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise OptionsError(f"{flag} {value!r}: choose one of {', '.join(choices)}")
