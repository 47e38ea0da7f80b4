"""QA curation, as CapRL built CapRL-QA-75K: a VLM writes questions, a VLM filters them.

generate: for each image a VLM writes five multiple-choice questions with the
  published system prompt (gen_qa.py, typos kept), sampled at temperature 0.1;
  `caprl_train.curate.parse.parse_mcqs` reads them and every problem it meets is reported.
filter: each question is asked `rounds` times (options shuffled every round)
  twice over: with the image, plus a "None of the above" option, and text-only
  without it. A question is kept when its accuracy with the image is above
  `image_threshold` and without it below `text_threshold` (answerable from the
  image, not from the question alone: Eq. 4 of the paper).
Both write the CapRL-QA-75K training layout (caprl_train.data.training_row);
the filter's kept questions carry their statistics, and a .stats.jsonl beside
the output has every question's, kept or not.

Deviations from the released scripts, where our engines cannot do the same:
engines without a system-message hook get the system prompt prepended to the
user turn (recorded in the report), and repetition_penalty=1.05 is not applied.
"""
from caprl_train.curate.common import CurateError, find_images, with_system_prompt
from caprl_train.curate.filter import (
                                       FILTER_PROMPT,
                                       NONE_OF_THE_ABOVE,
                                       FilterConfig,
                                       FilterReport,
                                       filter_qa,
                                       read_qa_file,
)
from caprl_train.curate.generate import (
                                       GENERATE_SAMPLING,
                                       GENERATE_SYSTEM_PROMPT,
                                       GENERATE_USER_TEXT,
                                       GenerateConfig,
                                       GenerateReport,
                                       generate_qa,
)
from caprl_train.curate.parse import parse_mcqs

__all__ = ["GENERATE_SAMPLING", "GENERATE_SYSTEM_PROMPT", "GENERATE_USER_TEXT", "FILTER_PROMPT", "NONE_OF_THE_ABOVE",
           "GenerateConfig",
           "GenerateReport", "FilterConfig", "FilterReport", "generate_qa", "filter_qa", "find_images",
           "read_qa_file", "with_system_prompt", "CurateError", "parse_mcqs"]
