"""Evaluation and reward protocols: the prompts, option handling and defaults.

A protocol fixes everything about *how* a judge is asked, so that two runs
under the same protocol differ only in the captions. The CapRL reward prompt is
kept byte for byte as its released reward server sent it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from prism_eval.core.options import ShownOptions
from prism_eval.core.records import JudgeRequest, Question, Sampling
from prism_eval.core.registry import Registry

# The CapRL reward prompt (user turn; the assistant turn is prefilled with "The answer is").
# Several lines end in two spaces, as in the released code.
CAPRL_JUDGE_TEMPLATE = "\n".join((
    'You will be given an image caption describing the visual content.  ',
    'Your task is to answer the multiple-choice question **strictly based on the caption**, even if the answer '
    'may seem obvious from prior knowledge or question wording.',
    '',
    'Ignore any external knowledge. Do not make assumptions beyond what the caption explicitly or implicitly states.',
    '',
    'Example 1:',
    'Caption: <Caption Start> A woman in a red coat is walking a black dog across a snowy park. <Caption End>  ',
    'Question: What color is the dog?',
    '- A) Brown  ',
    '- B) White  ',
    '- C) Black  ',
    '- D) Gray',
    '- E) Can not answer based on the caption',
    '',
    'The answer is C.',
    '',
    'Example 2:',
    'Caption: <Caption Start> A child is waving a British flag during a parade. <Caption End>  ',
    'Question: What color is the flag?',
    '- A) Red  ',
    '- B) Blue  ',
    '- C) Red, white, and blue  ',
    '- D) White',
    '- E) Can not answer based on the caption',
    '',
    'The answer is E.',
    '',
    'Now, answer the question based on the following caption:',
    '',
    'Caption: <Caption Start> {caption} <Caption End>  ',
    'Question: {question_with_options}  ',
))

CAPRL_CAPTION_PROMPT = "Please describe this image in detail."
PRISM_GENERIC_INSTRUCTION = ("Describe the fine-grained content of the image, including scenes, objects, "
                             "relationships, instance location, and any text present.")
PRISM_REASONING_PREFIX = ("You are an excellent text-based reasoning expert. You are required to answer the "
                          "question based on the detailed description of the image.\n\n")
PRISM_QUERY_FEWSHOT = (
    "Your task is to give an concise instruction about what basic elements are needed to be described based "
    "on the given question. Ensure that your instructions do not cover the raw question, options or thought "
    "process of answering the question.\n\n"
    "Question: In which period the number of full time employees is the maximum?\n"
    "Contents to observe: the number of full time employees\n"
    "Question: What is the value of the smallest bar?\n"
    "Contents to observe: the heights of all bars and their values\n"
    "Question: What is the main subject of the image?\n"
    "Contents to observe: the central theme or object\n"
    "Question: What is the position of the catcher relative to the home plate?\n"
    "Contents to observe: the spatial arrangement of the objects \n"
    "Question: What is the expected ratio of offspring with white spots to offspring with solid coloring? "
    "Choose the most likely ratio.\n"
    "Contents to observe: the genetic information\n"
    "Question: {question}\n"
    "Contents to observe: "
)
# CapRL-Eval-3B's stage-2 wrapper around the caption (Eval_CapRL.py).
CAPRL_EVAL_CAPTION_WRAPPER = ("Here is a detailed caption of an image: {caption}. "
                              "Please answer the question based on the caption.")

ANSWER_INSTRUCTIONS = {
    "boxed": "Put the final answer in \\boxed{}.",
    "short": "Answer the question using a single word or phrase.",
}
# option-loglik mode: one minimal prompt for every protocol (see Protocol.option_request).
OPTION_LOGLIK_TEMPLATE = "Caption: {caption}\nQuestion: {question}"
OPTION_LOGLIK_PREFILL = "The answer is"

Scoring = Literal["generate", "letter-logprob", "option-loglik"]
SCORING_MODES: tuple[str, ...] = ("generate", "letter-logprob", "option-loglik")
ESTIMATORS: tuple[str, ...] = ("argmax", "expected", "sampled")
OPTION_NORMS: tuple[str, ...] = ("mean", "sum", "pmi")


class ProtocolError(ValueError):
    """An unknown protocol or an impossible combination of its settings."""


@dataclass(frozen=True)
class Protocol:
    """How captions are asked for and how the judge is asked about them.

    The judge prompts are templates (str.format fields in braces): `mcq_template`
    takes {caption}, {question}, {options} (each option rendered with
    `option_line`, fields {label} and {text}, and joined) and {hint} (`hint_line`
    when the question has a hint, else empty); `open_template` takes {caption},
    {question} and {instruction} (ANSWER_INSTRUCTIONS by answer format);
    `task_template` takes {caption} and {task}, a prompt a benchmark wrote itself.
    """

    name: str
    caption_prompt: str
    caption_sampling: Sampling
    num_captions: int
    judge_sampling: Sampling
    chat_format: Literal["chatml", "model"]
    mcq_template: str
    option_line: str
    open_template: str
    task_template: str
    hint_line: str = ""
    prefill: str = ""  # starts the judge's turn for multiple-choice questions
    open_prefill: str = ""  # starts the judge's turn for short open answers (boxed answers get none)
    shuffle: bool = False
    cannot_answer: bool = False
    label_quirk: bool = False
    parser: Literal["cascade", "first-letter"] = "cascade"
    default_scoring: Scoring = "generate"
    default_estimator: str = "argmax"
    query_specific: bool = False
    judge: str = ""  # the judge the protocol's paper used: the default when a run names none
    description: str = ""
    notes: tuple[str, ...] = field(default=())

    def scoring_for(self, judge: str | None) -> Scoring:
        """The scoring a run gets when it names none: the protocol's, but option texts for a built-in judge.

        The built-in judges are 135M-parameter models, at chance when asked for a letter (21% expected
        reward for honest captions and for hacks alike on the demo) yet sound when option texts are
        scored; the papers' multi-billion-parameter judges answer letters well.
        """
        if self.default_scoring == "letter-logprob" and (judge or "").startswith("builtin:"):
            return "option-loglik"
        return self.default_scoring

    def _request(self, user: str, prefill: str = "") -> JudgeRequest:
        return JudgeRequest(messages=(("user", user),), prefill=prefill, chat_format=self.chat_format)

    # ---- multiple choice, letters -------------------------------------------------
    def mcq_request(self, caption: str, question: Question, shown: ShownOptions) -> JudgeRequest:
        """The prompt that asks for an option letter."""
        options = "".join(self.option_line.format(label=label, text=text)
                          for label, text in zip(shown.labels, shown.texts))
        hint = question.extra.get("hint")
        user = self.mcq_template.format(caption=caption, question=question.text, options=options,
                                        hint=self.hint_line.format(hint=hint) if hint and self.hint_line else "")
        return self._request(user, self.prefill)

    # ---- multiple choice, option text -------------------------------------------------
    def option_request(self, caption: str, question: Question, shown: ShownOptions
                       ) -> tuple[JudgeRequest, tuple[str, ...]]:
        """The prompt and the continuations scored in option-loglik mode (no letters, no listing).

        The same minimal prompt for every protocol: the mode scores each option's
        text as the answer, and small judges lose the caption in long instructions.
        With SmolLM2-135M on 30 demo questions, reference captions scored 73% with
        this prompt against 33-39% with the CapRL instructions (blind: 33-37%).
        """
        user = OPTION_LOGLIK_TEMPLATE.format(caption=caption, question=question.text)
        return self._request(user, OPTION_LOGLIK_PREFILL), tuple(" " + text for text in shown.texts)

    # ---- open questions -------------------------------------------------
    def open_request(self, caption: str, question: Question, answer_format: str = "short") -> JudgeRequest:
        """The prompt for an open (non-multiple-choice) question."""
        if answer_format not in ANSWER_INSTRUCTIONS:
            raise ProtocolError(f"answer format {answer_format!r}: choose one of {', '.join(ANSWER_INSTRUCTIONS)}")
        user = self.open_template.format(caption=caption, question=question.text,
                                         instruction=ANSWER_INSTRUCTIONS[answer_format])
        return self._request(user, "" if answer_format == "boxed" else self.open_prefill)

    def task_request(self, caption: str, task: str) -> JudgeRequest:
        """A benchmark's own prompt (instruction included) behind the protocol's caption preamble."""
        return self._request(self.task_template.format(caption=caption, task=task))

    def caption_prompt_for(self, observe: str | None = None) -> str:
        """The captioning instruction; Prism's query-specific part is appended when given."""
        if not observe:
            return self.caption_prompt
        part = observe.strip()
        if not part.endswith("."):
            part += "."
        return f"{self.caption_prompt} Especially, pay attention to {part}"

    def query_request(self, question: Question) -> JudgeRequest:
        """Prism's request for the "contents to observe": the question as VLMEvalKit writes it, options unshuffled.

        Hint, question, options and instruction, the text Prism's query writer
        saw; an open question is its hint and text alone.
        """
        hint = f"Hint: {question.extra['hint']}\n" if question.extra.get("hint") else ""
        if question.options:
            options = "".join(f"{chr(65 + i)}. {o}\n" for i, o in enumerate(question.options))
            text = PRISM_QUESTION_BLOCK.format(question=question.text, hint=hint, options=options)
        else:
            text = f"{question.text}\n{hint}"
        return JudgeRequest(messages=(("user", PRISM_QUERY_FEWSHOT.format(question=text.rstrip("\n"))),),
                            chat_format="model")


_CAPRL_EVAL_PREAMBLE = CAPRL_EVAL_CAPTION_WRAPPER + "\n"
# VLMEvalKit's text of a multiple-choice question, as Prism shows it to the reasoning LLM and the query writer
PRISM_QUESTION_BLOCK = ("{question}\n{hint}Options:\n{options}"
                        "Please select the correct answer from the options above. \n")
_PRISM_PREAMBLE = PRISM_REASONING_PREFIX + "Description: {caption}\nQuestion: "

PROTOCOLS: Registry[Protocol] = Registry("protocol", ProtocolError)


def register_protocol(protocol: Protocol, *, replace: bool = False) -> Protocol:
    """Make a protocol available by its name (to --protocol, the reward and the report)."""
    PROTOCOLS.register(protocol.name, protocol, replace=replace)
    return protocol


register_protocol(Protocol(
    name="caprl",
    caption_prompt=CAPRL_CAPTION_PROMPT,
    caption_sampling=Sampling(temperature=1.0, top_p=1.0, max_new_tokens=2048),
    num_captions=1,
    judge_sampling=Sampling(temperature=0.6, top_p=1.0, max_new_tokens=10),
    chat_format="chatml",
    mcq_template=CAPRL_JUDGE_TEMPLATE.replace("{question_with_options}", "{question}{options}"),
    option_line="\n   - {label}) {text}",
    open_template=_CAPRL_EVAL_PREAMBLE + "{question}\n{instruction}",
    task_template=_CAPRL_EVAL_PREAMBLE + "{task}",
    prefill="The answer is",
    open_prefill="The answer is",
    shuffle=True,
    cannot_answer=True,
    # the noise-free expectation of CapRL's one sampled letter; the built-in judges read options instead
    # (default_scoring below), being at chance when asked for a letter
    default_scoring="letter-logprob",
    default_estimator="expected",
    judge="Qwen/Qwen2.5-3B-Instruct",  # CapRL's reward model
    description="CapRL's reward: the published judge prompt, options shuffled on every ask, "
                "'Can not answer based on the caption' appended, assistant prefilled with 'The answer is'.",
))
register_protocol(Protocol(
    name="caprl-eval",
    caption_prompt="Please describe this image in detail",  # no period in Eval_CapRL.py
    caption_sampling=Sampling(temperature=1.0, top_p=1.0, max_new_tokens=2048),
    num_captions=4,
    judge_sampling=Sampling(temperature=1.0, top_p=1.0, max_new_tokens=2048),
    chat_format="model",
    mcq_template=_CAPRL_EVAL_PREAMBLE + "{question}\nOptions:\n{options}"
                 "Answer with the option's letter from the given choices. Put the final answer in \\boxed{{}}.",
    option_line="{label}. {text}\n",
    open_template=_CAPRL_EVAL_PREAMBLE + "{question}\n{instruction}",
    task_template=_CAPRL_EVAL_PREAMBLE + "{task}",
    default_scoring="generate",
    default_estimator="sampled",
    judge="internlm/CapRL-Eval-3B",  # CapRL's fine-tuned evaluator (a Qwen2.5-VL-3B checkpoint, run text-only)
    description="CapRL's Prism evaluation: 4 sampled captions per image, CapRL-Eval-3B style "
                "\\boxed{} answers, mean over captions.",
    notes=("The MCQ/open question suffixes here are ours; --compat caprl asks with each sample's own stored "
           "prompt from internlm/CapRL-Evaluation-Files instead.",),
))
register_protocol(Protocol(
    name="prism",
    caption_prompt=PRISM_GENERIC_INSTRUCTION,
    caption_sampling=Sampling(temperature=0.0, max_new_tokens=512),
    num_captions=1,
    judge_sampling=Sampling(temperature=0.0, max_new_tokens=256),
    chat_format="model",
    mcq_template=_PRISM_PREAMBLE + PRISM_QUESTION_BLOCK,
    option_line="{label}. {text}\n",
    hint_line="Hint: {hint}\n",
    open_template=_PRISM_PREAMBLE + "{question}\n{instruction}",
    task_template=_PRISM_PREAMBLE + "{task}",
    default_scoring="generate",
    judge="openai:gpt-3.5-turbo-0125@https://api.openai.com/v1",  # Prism's reasoning module ("ChatGPT")
    description="Prism (Qiao et al. 2024): the generic 'Human 1' instruction, greedy captions, the "
                "reasoning prompt with VLMEvalKit's option block, greedy judge.",
))
register_protocol(replace(
    PROTOCOLS.get("prism"), name="prism-query", query_specific=True,
    description="Prism's query-specific instruction: the judge writes the contents to observe from the "
                "question alone; the captioner gets the generic instruction plus that part."))


def get_protocol(name: str, **overrides) -> Protocol:
    """A protocol by name, with fields overridden (e.g. label_quirk=True, shuffle=False)."""
    protocol = PROTOCOLS.get(name)
    return replace(protocol, **overrides) if overrides else protocol
