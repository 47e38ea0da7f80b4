"""Developer tools that ship with the package: speed benchmarks (`prism-eval bench`)."""
