"""Leaderboard reports from run directories: one offline HTML page, a Markdown table, or JSON.

`write_report(run_dirs, out)` is the API (the demo calls it); `report_command` is the
`prism-eval report` click command.
"""
from prism_eval.report.api import FORMATS, write_report
from prism_eval.report.cli import report_command
from prism_eval.report.runs import ReportError

__all__ = ["write_report", "report_command", "ReportError", "FORMATS"]
