"""Row adapters for layouts a declarative spec cannot express.

A spec names one as `adapter: package.module:function` (these two also by their
short names). An adapter takes (spec, row, row index) and returns the row's
RowQuestions; `generic_question` does the ordinary reading with overrides.
"""
from __future__ import annotations

from prism_eval.benchmarks.catalog.questions import RowQuestion, generic_question, row_id
from prism_eval.benchmarks.catalog.schema import BenchmarkSpec, SpecError
from prism_eval.core.records import Question

_CHARXIV_DESCRIPTIVE = {
    1: "{}what is its title?", 2: "{}what is the label of the x-axis?", 3: "{}what is the label of the y-axis?",
    4: "{}what is the leftmost labeled tick on the x-axis?", 5: "{}what is the rightmost labeled tick on the x-axis?",
    6: "{}what is the spatially lowest labeled tick on the y-axis?",
    7: "{}what is the spatially highest labeled tick on the y-axis?",
    8: "{}what is difference between consecutive numerical tick values on the x-axis?",
    9: "{}what is difference between consecutive numerical tick values on the y-axis?",
    10: "{}how many lines are there?", 11: "{}do any lines intersect?",
    12: "{}how many discrete labels are there in the legend?", 13: "{}what are the names of the labels in the legend?",
    14: "{}what is the difference between the maximum and minimum values of the tick labels on the continuous "
        "legend (i.e., colorbar)?",
    15: "{}what is the maximum value of the tick labels on the continuous legend (i.e., colorbar)?",
    16: "{}what is the general trend of data from left to right?",
    17: "{}What is the total number of explicitly labeled ticks across all axes?",
    18: "What is the layout of the subplots?", 19: "What is the number of subplots?",
}


def charxiv_descriptive(spec: BenchmarkSpec, row: dict, index: int) -> list[RowQuestion]:
    """CharXiv rows hold four descriptive template ids (descriptive_q1..4) and answers (descriptive_a1..4)."""
    where = f"{spec.name} row {index}"
    base = row_id(spec, row, index, where)
    loc = row.get("subplot_loc")
    if loc is None or loc == []:
        loc = [row.get("subplot_row"), row.get("subplot_col")]
    if isinstance(loc, (list, tuple)) and loc and loc[0] == 0:
        prefix = "For the current plot, "
    elif isinstance(loc, (list, tuple)) and len(loc) >= 2:
        prefix = f"For the subplot at row {loc[0]} and column {loc[1]}, "
    else:
        prefix = f"For {loc}, "
    out = []
    for k in range(1, 5):
        qid_tpl = row.get(f"descriptive_q{k}")
        if qid_tpl is None:
            continue
        try:
            template = _CHARXIV_DESCRIPTIVE[int(qid_tpl)]
        except (KeyError, ValueError):
            raise SpecError(f"{where}: unknown CharXiv descriptive template id {qid_tpl!r}") from None
        text = template.format(prefix) if "{}" in template else template
        rq = generic_question(spec, row, index, text=text, qid=f"{base}_d{k}",
                               answer_field={"column": f"descriptive_a{k}", "as": "target"})
        out.append(RowQuestion(Question(id=rq.question.id, text=rq.question.text, answer=rq.question.answer,
                                        options=None, category=f"template {int(qid_tpl)}", targets=()),
                               rq.image_values))
    return out


def chartqa_pro(spec: BenchmarkSpec, row: dict, index: int) -> list[RowQuestion]:
    """ChartQA-Pro keeps a conversation: Question and Answer are lists; the last turn is asked."""
    where = f"{spec.name} row {index}"
    questions = row.get("Question")
    answers = row.get("Answer")
    questions = questions if isinstance(questions, list) else [questions]
    answers = answers if isinstance(answers, list) else [answers]
    if not questions or not questions[-1]:
        raise SpecError(f"{where}: empty Question")
    if row.get("Question Type") == "Conversational" and len(questions) > 1:
        turns = []
        for i, q in enumerate(questions[:-1]):
            turns.append(f"Q{i + 1}: {str(q).strip()}")
            if i < len(answers):
                turns.append(f"A{i + 1}: {str(answers[i]).strip()}")
        turns.append(f"Q{len(questions)}: {str(questions[-1]).strip()}")
        text = "\n".join(turns)
    else:
        text = str(questions[-1]).strip()
    paragraph = str(row.get("Paragraph") or "").strip()
    if paragraph:
        text = f"Context: {paragraph}\n\n{text}"
    rq = generic_question(spec, row, index, text=text,
                           answer_field={"column": "Answer", "pick": "last", "as": "target"})
    return [rq]
