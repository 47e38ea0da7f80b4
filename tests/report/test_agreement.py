"""The report's judge-agreement section from run folders of the same captioners under two real judges."""
from __future__ import annotations

import json

import pytest
from scipy import stats

from prism_eval.report.agreement import judge_agreement_sections, split_by_judge
from prism_eval.report.runs import load_runs
from prism_eval.runner.results import RunRecord
from tests.runner.test_diagnostics import bench_dir  # noqa: F401 - the shared eight-question benchmark


@pytest.fixture(scope="module")
def two_judge_runs(bench_dir, tmp_path_factory, builtin_judge_spec, tiny_lm_dir):  # noqa: F811
    from click.testing import CliRunner

    from prism_eval.cli import main

    root = tmp_path_factory.mktemp("agree")
    # The same scoring under both judges (each judge has its own default): only the judge may differ.
    for tag, judge in (("smollm2", builtin_judge_spec), ("tiny", f"hf:{tiny_lm_dir}")):
        result = CliRunner().invoke(main, ["run", "-c", f"file:{bench_dir / 'full.jsonl'}",
                                           "-c", f"file:{bench_dir / 'partial.jsonl'}", "--blind",
                                           "-b", str(bench_dir / "bench.jsonl"), "--judge", judge,
                                           "--scoring", "option-loglik", "--estimator", "expected",
                                           "--store", str(root / "s.sqlite"), "--out", str(root / tag)])
        assert result.exit_code == 0, result.output
    return root


def test_agreement_between_two_judges_over_the_same_captioners(two_judge_runs):
    runs = load_runs([two_judge_runs / "smollm2", two_judge_runs / "tiny"])
    assert len(runs) == 6 and len(split_by_judge(runs)) == 1
    [section] = judge_agreement_sections(runs, n_resamples=300)
    judges = section.judges
    assert len(judges) == 2 and judges[0] == "builtin:smollm2-135m" and len(section.captioners) == 3
    [pair] = section.pairs
    # Every run scored all eight questions: each judge's leaderboard is its runs' own averages,
    # and tau is scipy's tau-b between them.
    for j in judges:
        for captioner, shared, own in section.leaderboards[j]:
            assert shared == pytest.approx(own)
    a = dict((c, s) for c, s, _ in section.leaderboards[judges[0]])
    b = dict((c, s) for c, s, _ in section.leaderboards[judges[1]])
    order = sorted(a)
    expected = stats.kendalltau([a[c] for c in order], [b[c] for c in order]).statistic
    assert pair.kendall_tau == pytest.approx(expected)
    assert pair.ci95[0] <= pair.kendall_tau <= pair.ci95[1] and pair.n_images == 4 and pair.n_questions == 8
    [entry] = section.to_json()
    assert entry["judges"] == judges and entry["kendall_tau"] == pair.kendall_tau
    assert entry["ci95"] == list(pair.ci95)
    json.dumps(entry, allow_nan=False)
    # The bundled judge reads the captions: full captions above none.
    smollm2 = [c for c, _, _ in section.leaderboards[judges[0]]]
    assert smollm2.index(next(c for c in smollm2 if "full" in c)) < smollm2.index("none")


def test_no_section_for_one_judge_or_for_runs_scored_otherwise(two_judge_runs, tmp_path):
    assert judge_agreement_sections(load_runs([two_judge_runs / "smollm2"])) == []
    # The same captioners under the other judge but another seed: not comparable, so no agreement.
    import shutil

    for d in (two_judge_runs / "tiny").iterdir():
        shutil.copytree(d, tmp_path / d.name)
        record = RunRecord.read(tmp_path / d.name)
        record.settings = type(record.settings)(**{**record.settings.to_dict(), "seed": 3})
        record.write(tmp_path / d.name)
    assert judge_agreement_sections(load_runs([two_judge_runs / "smollm2", tmp_path])) == []
