"""The lmms-eval bridge, both directions, on a local custom lmms-eval task (YAML + parquet data).

The task reuses lmms-eval's own ChartQA functions (doc_to_visual, doc_to_text,
process_results) over a three-row local dataset with ChartQA's columns.
Everything runs in .venv-lmms (where lmms-eval and prism-eval are installed):

- A: `prism-eval run --benchmark lmms:prism_toy_chart` with a captions file and a
  tiny random judge; the scores in samples.jsonl must equal lmms-eval's
  process_results on the judge's extracted answers.
- B: `python -m lmms_eval eval --model prism --model_args captioner=file:...,judge=hf:...`;
  every response lmms-eval recorded must equal what the judge says, given the
  caption of that document's image, when asked directly.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

import datasets
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
LMMS_BIN = ROOT / ".venv-lmms" / "bin"

pytestmark = pytest.mark.needs_lmms
TASK = "prism_toy_chart"

CAPTIONS = {0: "A bar chart of sales. The peak value is 1234.", 1: "A line chart; the lowest year is 2019."}


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), ((seed * 40) % 256, 80, 120)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def toy_task(tmp_path_factory) -> Path:
    """An lmms-eval task folder: YAML, utils.py re-exporting lmms-eval's ChartQA functions, parquet data."""
    root = tmp_path_factory.mktemp("lmms-task")
    rows = {"type": ["human_test", "augmented_test", "human_test"],
            "question": ["What is the peak value?", "Which year is lowest?", "How many bars are there?"],
            "answer": ["1234", "2019", "7"],
            "image": [{"bytes": _png(1), "path": None}, {"bytes": _png(2), "path": None},
                      {"bytes": _png(1), "path": None}]}  # docs 0 and 2 share a chart
    features = datasets.Features({"type": datasets.Value("string"), "question": datasets.Value("string"),
                                  "answer": datasets.Value("string"), "image": datasets.Image()})
    datasets.Dataset.from_dict(rows, features=features).to_parquet(str(root / "test.parquet"))
    (root / f"{TASK}.yaml").write_text(f"""task: {TASK}
dataset_path: parquet
dataset_kwargs:
  data_files:
    test: {root / 'test.parquet'}
test_split: test
output_type: generate_until
doc_to_visual: !function utils.chartqa_doc_to_visual
doc_to_text: !function utils.chartqa_doc_to_text
doc_to_target: answer
process_results: !function utils.chartqa_process_results
generation_kwargs:
  max_new_tokens: 6
  temperature: 0
  do_sample: false
metric_list:
  - metric: relaxed_overall
    aggregation: mean
    higher_is_better: true
lmms_eval_specific_kwargs:
  default:
    pre_prompt: ""
    post_prompt: "\\nAnswer the question with a single word."
""")
    (root / "utils.py").write_text("from lmms_eval.tasks.chartqa.utils import (  # noqa: F401\n"
                                   "    chartqa_doc_to_text, chartqa_doc_to_visual, chartqa_process_results)\n")
    # image keys are lmms:<task>/<doc id>/<i>; doc 2 reuses doc 0's image, so its caption is looked up by doc 0's key
    lines = [{"image": f"lmms:{TASK}/{doc}/0", "caption": text} for doc, text in CAPTIONS.items()]
    (root / "captions.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return root


def _env(tmp: Path, task_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRISM_EVAL_", "HF_"))}
    env.update(PRISM_EVAL_LMMS_INCLUDE=str(task_dir), PRISM_EVAL_CACHE=str(tmp / "cache"), HF_HOME=str(tmp / "hf"),
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return env


def _run(cmd: list[str], env: dict, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd[:4])} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def lmms_python() -> Path:
    if not (LMMS_BIN / "python").exists():
        pytest.fail(f"{LMMS_BIN / 'python'} is missing: run `make setup-lmms` (make test builds it)")
    return LMMS_BIN / "python"


def test_prism_eval_runs_an_lmms_task(toy_task, tiny_lm_dir, tmp_path, lmms_python):
    """Direction A: --benchmark lmms:<task>, scored with the task's own process_results."""
    env = _env(tmp_path, toy_task) | {"PRISM_EVAL_LMMS_DEFAULTS": "0"}
    out = tmp_path / "run"
    _run([str(LMMS_BIN / "prism-eval"), "run", "-c", f"file:{toy_task / 'captions.jsonl'}", "-j",
          f"hf:{tiny_lm_dir}", "-b", f"lmms:{TASK}", "-p", "prism", "--out", str(out)], env, tmp_path)
    results = json.loads((out / "results.json").read_text())
    bench = results["benchmarks"][f"lmms:{TASK}"]
    assert bench["n"] == 3
    lines = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert {x["question"] for x in lines} == {f"{q}\nAnswer the question with a single word." for q in
                                               ["What is the peak value?", "Which year is lowest?",
                                                "How many bars are there?"]}
    assert {x["gold"] for x in lines} == {"1234", "2019", "7"}
    by_q = {x["question"].split("\n")[0]: x for x in lines}
    assert by_q["What is the peak value?"]["caption"] == CAPTIONS[0]
    assert by_q["How many bars are there?"]["caption"] == CAPTIONS[0]  # same chart, one caption
    assert by_q["Which year is lowest?"]["caption"] == CAPTIONS[1]
    # every recorded score is lmms-eval's own process_results on the extracted answer
    check = ("import json,sys\n"
             "from lmms_eval.tasks.chartqa.utils import chartqa_process_results\n"
             "rows=json.load(sys.stdin)\n"
             "print(json.dumps([chartqa_process_results({'type':'human_test','answer':g},[p])['relaxed_overall']"
             " for g,p in rows]))\n")
    scored = [x for x in lines if x["status"] == "ok"]
    assert scored, "the judge answered nothing"
    proc = subprocess.run([str(lmms_python), "-c", check],
                          input=json.dumps([[x["gold"], x["extracted"]] for x in scored]),
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [x["score"] for x in scored] == json.loads(proc.stdout.strip().splitlines()[-1])


def test_bridge_scorer_is_the_tasks_process_results(toy_task, tmp_path, lmms_python):
    """The registered lmms:<task> metric agrees with the task's process_results on right and wrong answers."""
    script = f"""
import json
from prism_eval.benchmarks import load_benchmark
from prism_eval.core.metrics import score_open
from prism_eval.integrations.lmms.tasks import LmmsBridgeError, load_lmms_benchmark
b = load_benchmark("lmms:{TASK}", limit=2)
q = {{x.answer: x for x in b.questions}}
out = {{"n": len(b.questions), "samples": len(b.samples), "kind": b.kind, "metric": b.metric,
        "keys": sorted(r.key for s in b.samples for r in s.images),
        "scores": [score_open(p, q["1234"], b.metric) for p in ["1234", "1,234", "1200", "1300", "abc"]]}}
try:
    load_lmms_benchmark("no_such_task_xyz")
except LmmsBridgeError as exc:
    out["error"] = str(exc)
print(json.dumps(out))
"""
    env = _env(tmp_path, toy_task) | {"PRISM_EVAL_LMMS_DEFAULTS": "0"}
    proc = _run([str(lmms_python), "-c", script], env, tmp_path)
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["n"] == 2 and got["samples"] == 2 and got["kind"] == "open" and got["metric"] == f"lmms:{TASK}"
    assert got["keys"] == [f"lmms:{TASK}/0/0", f"lmms:{TASK}/1/0"]
    # lmms-eval's relaxed_correctness: float("1,234") fails (string compare), 1200 is within 5% of 1234
    assert got["scores"] == [1.0, 0.0, 1.0, 0.0, 0.0]
    assert got["error"].startswith("lmms:no_such_task_xyz: no such lmms-eval task")


def test_lmms_eval_runs_the_prism_model(toy_task, tiny_lm_dir, tmp_path, lmms_python):
    """Direction B: lmms-eval's CLI with --model prism (entry point lmms_eval.models)."""
    env = _env(tmp_path, toy_task)
    out = tmp_path / "lmms-out"
    args = f"captioner=file:{toy_task / 'captions.jsonl'},judge=hf:{tiny_lm_dir},protocol=prism"
    proc = _run([str(lmms_python), "-m", "lmms_eval", "eval", "--model", "prism", "--model_args", args,
                 "--tasks", TASK, "--include_path", str(toy_task), "--output_path", str(out), "--log_samples",
                 "--device", "cpu"], env, tmp_path)
    written = sorted(out.rglob("*_results.json"))
    assert written, f"lmms-eval wrote no results under {out}:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    result_file = written[0]
    samples_file = next(out.rglob(f"*_samples_{TASK}.jsonl"))
    results = json.loads(result_file.read_text())["results"][TASK]
    samples = [json.loads(x) for x in samples_file.read_text().splitlines()]
    assert len(samples) == 3
    per_doc = [s["relaxed_overall"] for s in sorted(samples, key=lambda s: s["doc_id"])]
    assert results["relaxed_overall,none"] == pytest.approx(sum(per_doc) / 3)
    # the responses are the judge's answers given each document's caption: ask the judge directly and compare
    check = f"""
import json, sys
from prism_eval.core.protocols import get_protocol
from prism_eval.core.records import Sampling
from prism_eval.engines.registry import load_judge
from prism_eval.integrations.lmms.model import _cut, judge_request
rows = json.load(sys.stdin)
judge = load_judge("hf:{tiny_lm_dir}")
reqs = [judge_request(get_protocol("prism"), cap, prompt) for cap, prompt in rows]
print(json.dumps([_cut(t, []).strip() for t in judge.generate(reqs, Sampling(temperature=0.0, max_new_tokens=6))]))
"""
    caption_of = {0: CAPTIONS[0], 1: CAPTIONS[1], 2: CAPTIONS[0]}
    rows = [[caption_of[s["doc_id"]], s["input"]] for s in sorted(samples, key=lambda s: s["doc_id"])]
    proc = subprocess.run([str(lmms_python), "-c", check], input=json.dumps(rows), env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    direct = json.loads(proc.stdout.strip().splitlines()[-1])
    recorded = [s["filtered_resps"] if isinstance(s["filtered_resps"], str) else s["filtered_resps"][0]
                for s in sorted(samples, key=lambda s: s["doc_id"])]
    assert recorded == direct


def test_plugin_is_registered_through_the_entry_point(tmp_path, toy_task, lmms_python):
    script = ("from lmms_eval.models import get_model, get_model_manifest\n"
              "m = get_model_manifest('prism'); print(m.simple_class_path, get_model('prism').__name__)")
    proc = _run([str(lmms_python), "-c", script], _env(tmp_path, toy_task), tmp_path)
    assert proc.stdout.strip().splitlines()[-1] == "prism_eval.integrations.lmms.model.PrismLMM PrismLMM"
