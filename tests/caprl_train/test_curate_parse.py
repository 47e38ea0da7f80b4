"""The QA-generation parser: the published format, the ways models drift from it, and garbage."""
from caprl_train.curate import GENERATE_SYSTEM_PROMPT
from caprl_train.curate.parse import parse_mcqs


def records(text):
    return [q.to_record() for q in parse_mcqs(text).questions]


def test_the_published_example_parses_exactly():
    # The two examples inside the published system prompt are themselves well-formed output.
    example = GENERATE_SYSTEM_PROMPT.split("format:\n", 1)[1].rsplit("You should strictly", 1)[0]
    report = parse_mcqs(example)
    assert report.problems == []
    assert records(example) == [
        {"question": "Which method achieves the highest accuracy (Acc) on the FF++ (HQ) dataset?",
         "options": ['Method "a"', 'Method "b"', 'Method "c"', "Ours"], "answer": "D"},
        {"question": "What is the primary color of the kayak in the image?",
         "options": ["Blue", "Red", "Black", "White"], "answer": "B"},
    ]


def test_system_prompt_is_verbatim_with_its_typos_and_trailing_spaces():
    assert "should be challenge and" in GENERATE_SYSTEM_PROMPT
    assert "All the quesiton should" in GENERATE_SYSTEM_PROMPT
    assert "**Answer:** D) Ours   \n------" in GENERATE_SYSTEM_PROMPT
    assert "**Answer:** B) Red \n------" in GENERATE_SYSTEM_PROMPT


FIVE = "".join(
    f"#### {i}. **Question number {i}?**\n   - A) alpha {i}\n   - B) beta {i}\n   - C) gamma {i}\n"
    f"   - D) delta {i}\n\n**Answer:** {'ABCDA'[i - 1]}) {['alpha', 'beta', 'gamma', 'delta', 'alpha'][i - 1]} {i}\n"
    "------\n" for i in range(1, 6))


def test_five_well_formed_questions():
    report = parse_mcqs(FIVE)
    assert report.problems == [] and report.blocks == 5
    assert [q.answer for q in report.questions] == list("ABCDA")
    assert report.questions[2].options == ["alpha 3", "beta 3", "gamma 3", "delta 3"]


def test_slightly_malformed_variants_are_read():
    text = (
        "Sure! Here are the questions:\n\n"          # chatter before the questions
        "1. What colour is the car?\n"               # no ####, no bold
        "A. red\nB. blue\nC. green\nD. white\n"      # "A." instead of "   - A)"
        "Answer: A\n\n"                              # no bold, bare letter
        "Question 2: How many dogs are there? A) one B) two C) three D) four\n"   # options inline
        "Answer: (C)\n"
        "------\n"
        "3) **Which animal is shown?**\n"
        "- (a) cat\n- (b) dog\n"                    # lower-case, parenthesised letters
        "**Answer: dog**\n"                          # the answer by its text, bold around all of it
        "```\n"
        "#### 4.\n**What is written on the sign?**\n"   # question text on the line after its number
        "   - A) OPEN\n   - B) CLOSED\n"
        "**Answer:** B) CLOSED\n```\n"
    )
    report = parse_mcqs(text)
    assert records(text) == [
        {"question": "What colour is the car?", "options": ["red", "blue", "green", "white"], "answer": "A"},
        {"question": "How many dogs are there?", "options": ["one", "two", "three", "four"], "answer": "C"},
        {"question": "Which animal is shown?", "options": ["cat", "dog"], "answer": "B"},
        {"question": "What is written on the sign?", "options": ["OPEN", "CLOSED"], "answer": "B"},
    ]
    assert report.problems == ["text outside any question (1 line(s), e.g. 'Sure! Here are the questions:')"]


def test_broken_questions_are_reported_not_guessed():
    text = (
        "1. Which shape is red?\n   - A) circle\n   - B) square\n**Answer:** C) triangle\n------\n"   # letter not offered
        "2. Which shape is blue?\n   - A) circle\n   - B) square\n------\n"                            # no answer
        "3. Which shape is big?\n   - A) circle\n   - B) square\n**Answer:** A) square\n------\n"      # letter vs text
        "4. Which shape is small?\n   - A) circle\n**Answer:** A\n------\n"                             # one option
        "5. Which shape is green?\n   - A) circle\n   - B) square\n**Answer:** maybe\n------\n"        # no option named
        "6. Which shape is left?\n   - A) circle\n   - C) square\n**Answer:** A\n"                      # letters skip B
        "7. Which shape is right?\n   - A) circle\n   - B) circle\n**Answer:** A\n"                     # duplicate options
    )
    report = parse_mcqs(text)
    assert report.questions == []
    assert report.blocks == 7 and report.rejected == 7
    assert report.problems == [
        "question 1: answer letter is not among the options (C not in AB)",
        "question 2: no answer line",
        "question 3: answer letter contradicts its text (A, text of B)",
        "question 4: fewer than 2 options ('Which shape is small?')",
        "question 5: answer names no option ('maybe')",
        "question 6: option letters are not A, B, C, ... in order (AC)",
        "question 7: two options have the same text",
    ]


def test_an_option_text_starting_with_a_letter_word_is_not_a_letter():
    text = "1. Which pet is shown?\n   - A) A cat\n   - B) A dog\nAnswer: A dog\n"
    assert records(text) == [{"question": "Which pet is shown?", "options": ["A cat", "A dog"], "answer": "B"}]


def test_garbage_and_empty_output():
    garbage = "\x0e\x1f8 snow high to map)\ufffdboind restan* fl* crowded lon fiveV"
    report = parse_mcqs(garbage)
    assert report.questions == [] and report.blocks == 0
    assert report.problems[-1] == "no question found"
    assert report.problems[0].startswith("text outside any question (1 line(s)")
    for empty in ("", "   \n\n"):
        assert parse_mcqs(empty).problems == ["empty output"]
    assert parse_mcqs("A) yes\nB) no\nAnswer: A").questions == []  # options with no question at all
