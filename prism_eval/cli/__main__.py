"""`python -m prism_eval.cli` is `prism-eval`."""
from prism_eval.cli import main

main()
