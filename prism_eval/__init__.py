"""prism-eval: measure and train image captioners by the utility of their captions."""
__version__ = "0.1.0"
