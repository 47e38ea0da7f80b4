"""caprl-train: GRPO training of captioners on the shared caption-utility reward."""
