"""Leaderboard reports from run directories: one offline HTML page, a Markdown table, or JSON.

`write_report(run_dirs, out)` is the API (the demo and `prism-eval report` call it).
"""
from prism_eval.report.api import FORMATS, write_report
from prism_eval.report.runs import ReportError

__all__ = ["write_report", "ReportError", "FORMATS"]
