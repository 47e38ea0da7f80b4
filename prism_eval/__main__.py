"""`python -m prism_eval` is `prism-eval`."""
from prism_eval.cli import main

main()
