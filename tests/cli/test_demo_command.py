"""`prism-eval demo` end to end on a slice of the embedded benchmark (the full demo is `make demo`)."""
import json

from click.testing import CliRunner

from prism_eval.cli import main


def test_demo_writes_leaderboard_and_validity(tmp_path, builtin_judge_spec):
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--out", str(out), "--limit", "40"])
    assert result.exit_code == 0, result.output
    validity = json.loads((out / "validity.json").read_text())
    checks = {(c["higher"], c["lower"]): c for c in validity["checks"]}
    assert set(checks) == {("reference", "partial"), ("partial", "none"), ("reference", "wrong"),
                           ("reference", "none")}
    # the ordering the captions were built to produce (margins measured, not asserted beyond their sign)
    assert checks[("reference", "wrong")]["margin"] > 0 and checks[("reference", "none")]["margin"] > 0
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == ["none", "partial", "reference", "tiny-llava-demo", "wrong"]
    html = (out / "leaderboard.html").read_text()
    assert "file_reference" in html or "reference.jsonl" in html
    assert (out / "leaderboard.md").read_text().count("\n|") >= 5
