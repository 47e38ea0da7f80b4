"""The CapRL reward prompt is pinned byte for byte against the published template."""
import hashlib

from prism_eval.core.chat import render_chatml
from prism_eval.core.options import show_options
from prism_eval.core.protocols import CAPRL_JUDGE_TEMPLATE, get_protocol
from prism_eval.core.records import Question

# sha256 of the published user-turn template (the CapRL paper, appendix A.1), placeholders included.
PUBLISHED_SHA256 = "f8121e2e9499d4a796dbd847d80213c17c1aaf3ccad457cf52174e815f152fa0"


def test_caprl_template_matches_published_text():
    assert hashlib.sha256(CAPRL_JUDGE_TEMPLATE.encode()).hexdigest() == PUBLISHED_SHA256
    assert CAPRL_JUDGE_TEMPLATE.startswith("You will be given an image caption describing the visual content.  \n")
    assert CAPRL_JUDGE_TEMPLATE.endswith("Caption: <Caption Start> {caption} <Caption End>  \n"
                                         "Question: {question_with_options}  ")


def test_caprl_request_renders_the_published_chatml():
    protocol = get_protocol("caprl", label_quirk=True)
    q = Question(id="q", text="What color is the car?", answer="B", options=("blue", "red", "green", "black"))
    shown = show_options(q.options, q.answer, shuffle=False, rng=None, cannot_answer=True, label_quirk=True)
    text = render_chatml(protocol.mcq_request("A red car.", q, shown))
    assert text.startswith("<|im_start|>user\nYou will be given an image caption")
    assert text.endswith(
        "Caption: <Caption Start> A red car. <Caption End>  \n"
        "Question: What color is the car?\n   - A) blue\n   - B) red\n   - C) green\n   - D) black\n"
        "   - F) Can not answer based on the caption  <|im_end|>\n<|im_start|>assistant\nThe answer is")
    assert "<|im_start|>system" not in text


def test_protocol_defaults_follow_the_papers():
    caprl = get_protocol("caprl")
    assert caprl.judge_sampling.temperature == 0.6 and caprl.judge_sampling.max_new_tokens == 10
    assert caprl.shuffle and caprl.cannot_answer and caprl.prefill == "The answer is"
    prism = get_protocol("prism")
    assert prism.caption_prompt.startswith("Describe the fine-grained content of the image")
    assert get_protocol("caprl-eval").num_captions == 4
    assert get_protocol("prism-query").caption_prompt_for("the bars") .endswith("Especially, pay attention to the bars.")
