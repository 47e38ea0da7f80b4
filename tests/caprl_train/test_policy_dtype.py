"""The policy's weight dtype: float32 for full fine-tuning ('auto'), because bf16 weights do not move at
CapRL's learning rate; LoRA keeps its frozen base in the half dtype."""
from __future__ import annotations

import torch

from caprl_train.config import LoraSettings, TrainConfig
from caprl_train.train import policy_dtype


def test_bf16_weights_do_not_move_at_caprls_learning_rate():
    """Why caprl-train keeps full fine-tuning's weights in float32 ('auto')."""
    assert policy_dtype(TrainConfig()) == "float32"
    assert policy_dtype(TrainConfig(lora=LoraSettings(enabled=True))) == "auto"
    assert policy_dtype(TrainConfig(dtype="bfloat16")) == "bfloat16"
    moved = {}
    for dtype in (torch.bfloat16, torch.float32):
        torch.manual_seed(0)
        w = torch.nn.Parameter((torch.randn(4096) * 0.02).to(dtype))
        before = w.detach().clone()
        opt = torch.optim.AdamW([w], lr=1e-6, weight_decay=0.0)
        (w.float() * torch.randn(4096)).sum().backward()
        opt.step()
        moved[dtype] = (w.detach() != before).float().mean().item()
    assert moved[torch.float32] == 1.0 and moved[torch.bfloat16] < 0.1
