"""The CapRL reward as a trl reward function: a thin adapter over prism_eval.core.utility.

A caption's reward is the judge's accuracy on questions about its image, asked
with shuffled options, computed by `score_caption_sets`, the same function
the evaluator calls, so a reward and a leaderboard number on the same
captions, questions, protocol and seed are the same number.
"""
from __future__ import annotations

import json
from typing import Any, Sequence

from caprl_train.config import RewardConfig
from prism_eval.core.protocols import get_protocol
from prism_eval.core.records import ImageRef, Question, Sample
from prism_eval.core.utility import CaptionSet, score_caption_sets


def length_reward(n_tokens: int, l1: int, l2: int) -> float:
    """CapRL++'s length term: 1 up to l1 tokens, linear down to 0 at l2, 0 beyond."""
    if n_tokens <= l1:
        return 1.0
    if n_tokens >= l2:
        return 0.0
    return 1.0 - (n_tokens - l1) / (l2 - l1)


def questions_from_records(records: Sequence[dict[str, Any]] | str, sample_id: str) -> tuple[Question, ...]:
    """Questions from a dataset column: a list (or JSON string) of {question, options|choices, answer}.

    `choices` in CapRL-QA-75K's form ("A) text") lose their labels; the answer stays a letter.
    """
    if isinstance(records, str):
        records = json.loads(records)
    out = []
    for i, r in enumerate(records):
        options = r.get("options")
        if options is None:
            options = [c.split(")", 1)[1].strip() if len(c) > 2 and c[1] == ")" else c for c in r["choices"]]
        out.append(Question(id=str(r.get("id", f"{sample_id}#{i}")), text=r["question"],
                            answer=str(r["answer"]).strip(),
                            options=tuple(options)))
    return tuple(out)


def completion_text(completion: Any) -> str:
    """trl passes conversational completions as [{"role": "assistant", "content": ...}], plain ones as str."""
    if isinstance(completion, str):
        return completion
    content = completion[0]["content"] if completion else ""
    if isinstance(content, list):  # content parts
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


class CaptionUtilityReward:
    """Callable trl reward function: `reward(prompts, completions, qa=..., sample_id=..., **kw)`.

    Consecutive completions of the same sample form one group and are scored in
    one call with the same question draws and option orders (common random
    numbers make the group-relative advantage less noisy).
    """

    __name__ = "caption_utility"

    def __init__(self, config: RewardConfig | None = None, judge: Any = None) -> None:
        self.config = config or RewardConfig()
        if judge is None:
            from prism_eval.engines.registry import load_judge
            judge = load_judge(self.config.judge)
        self.judge = judge
        self.protocol = get_protocol(self.config.protocol, **self.config.protocol_overrides())
        self.last_stats: dict[str, float] = {}

    def score(self, samples: Sequence[Sample], captions: Sequence[Sequence[str]], step: int = 0):
        """Per-sample lists of CaptionScore (answers included), for logging and tests."""
        sets = [CaptionSet(s, list(c)) for s, c in zip(samples, captions)]
        return score_caption_sets(self.judge, self.protocol, sets, self.config.utility_config(step))

    def __call__(self, prompts=None, completions=None, qa=None, sample_id=None, completion_ids=None,
                 trainer_state=None, log_metric=None, **kwargs) -> list[float | None]:
        if completions is None or qa is None:
            raise ValueError("the caption-utility reward needs the dataset column 'qa' (questions per image)")
        texts = [completion_text(c) for c in completions]
        ids = list(sample_id) if sample_id is not None else [str(i) for i in range(len(texts))]
        step = int(getattr(trainer_state, "global_step", 0) or 0)
        groups = group_completions(ids, qa)
        scored = self.score([g[0] for g in groups], [[texts[i] for i in g[1]] for g in groups], step)
        judge_acc: list[float | None] = [None] * len(texts)
        answers = []
        for (_sample, idx), row in zip(groups, scored):
            for i, cs in zip(idx, row):
                judge_acc[i] = cs.utility
                answers.extend(cs.answers)
        lengths = ([len(c) for c in completion_ids] if completion_ids is not None
                   else [len(t.split()) for t in texts])
        rewards = list(judge_acc)
        len_terms = [length_reward(n, self.config.length_l1, self.config.length_l2) for n in lengths]
        if self.config.length_beta:
            rewards = [None if r is None else r + self.config.length_beta * t for r, t in zip(rewards, len_terms)]
        self.last_stats = self._stats(judge_acc, answers, lengths, len_terms, completion_ids)
        if log_metric is not None:
            for name, value in self.last_stats.items():
                log_metric(f"caption_utility/{name}", value)
        log_extra = kwargs.get("log_extra")
        if log_extra is not None:  # per-completion columns in trl's completions table
            log_extra("judge_accuracy", judge_acc)
            log_extra("caption_tokens", lengths)
        return rewards

    def _stats(self, judge_acc: list[float | None], answers: list, lengths: list[int], len_terms: list[float],
               completion_ids: Sequence | None) -> dict[str, float]:
        """What each reward call logs: judge accuracy, caption length, unparsed/failed/truncated shares."""
        accuracy = [r for r in judge_acc if r is not None]
        stats = {
            "judge_accuracy": sum(accuracy) / len(accuracy) if accuracy else float("nan"),
            "caption_length": sum(lengths) / len(lengths) if lengths else 0.0,
            "unparsed_rate": sum(a.status == "unanswered" for a in answers) / max(len(answers), 1),
            "failed_rate": sum(a.status == "failed" for a in answers) / max(len(answers), 1),
        }
        if self.config.max_completion_length:
            truncated = truncated_flags(lengths, completion_ids, self.config.max_completion_length,
                                        set(self.config.eos_token_ids))
            stats["truncation_rate"] = sum(truncated) / max(len(truncated), 1)
        if self.config.length_beta:
            stats["length_term"] = sum(len_terms) / max(len(len_terms), 1)
        return stats


def group_completions(ids: Sequence[Any], qa: Sequence[Any]) -> list[tuple[Sample, list[int]]]:
    """Consecutive completions of the same sample form one group (trl lays a group's G completions out together)."""
    groups: list[tuple[Sample, list[int]]] = []
    for i, (sid, q) in enumerate(zip(ids, qa)):
        if groups and groups[-1][0].id == str(sid):
            groups[-1][1].append(i)
            continue
        sample = Sample(id=str(sid), images=(ImageRef(key=str(sid), sha256=str(sid)),),
                        questions=questions_from_records(q, str(sid)))
        groups.append((sample, [i]))
    return groups


def truncated_flags(lengths: list[int], completion_ids: Sequence | None, cap: int, eos: set[int]) -> list[bool]:
    """Which completions hit the length cap without ending (no end-of-sequence token as the last id)."""
    if completion_ids is not None and eos:
        return [len(c) >= cap and (not len(c) or int(c[-1]) not in eos) for c in completion_ids]
    return [n >= cap for n in lengths]
