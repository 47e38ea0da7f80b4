"""`prism-eval bench gpu`: the GPU paths measured at CapRL's model sizes, with random weights built offline."""
