"""Device-side measurement: peak memory, the device's own matrix-product and copy ceilings, FLOP counts.

GPU kernels run asynchronously, so every timer here synchronizes the device
before reading the host clock. Ceilings are measured in the same run (a large
bf16 matrix product, a large device-to-device copy) and, where the device is
known, set beside the vendor's datasheet figure.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

# Dense (no sparsity) bf16 tensor-core peak and memory bandwidth by the vendors' datasheets, by device name.
DATASHEET = {
    "NVIDIA H200": {"bf16_tflops": 989.4, "hbm_tb_s": 4.8},
    "NVIDIA H200 NVL": {"bf16_tflops": 835.5, "hbm_tb_s": 4.8},
    "NVIDIA H100 80GB HBM3": {"bf16_tflops": 989.4, "hbm_tb_s": 3.35},
    "NVIDIA H100 PCIe": {"bf16_tflops": 756.5, "hbm_tb_s": 2.0},
    "NVIDIA H100 NVL": {"bf16_tflops": 835.5, "hbm_tb_s": 3.9},
    "NVIDIA A100-SXM4-80GB": {"bf16_tflops": 312.0, "hbm_tb_s": 2.04},
    "NVIDIA A100-SXM4-40GB": {"bf16_tflops": 312.0, "hbm_tb_s": 1.56},
}


def sig(x: float, digits: int = 4) -> float:
    """x rounded to `digits` significant digits (rates span 1e-5 on a CPU at tiny scale to 1e3 on a GPU)."""
    return float(f"{x:.{digits}g}")


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


class CudaPeak:
    """Peak memory held by PyTorch's CUDA allocator inside a `with` block (the PeakRSS interface)."""

    kind = "cuda_allocated"

    def __enter__(self) -> "CudaPeak":
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        self.start_mb = torch.cuda.memory_allocated() / 2**20
        self.peak_mb = self.start_mb
        return self

    def __exit__(self, *exc: Any) -> None:
        import torch

        torch.cuda.synchronize()
        self.peak_mb = torch.cuda.max_memory_allocated() / 2**20
        self.reserved_mb = torch.cuda.max_memory_reserved() / 2**20


def memory_probe(device: str):
    """The peak-memory context manager for a device: the CUDA allocator's, or process RSS on a CPU."""
    if device.startswith("cuda"):
        return CudaPeak
    from prism_eval.tools.bench_judge import PeakRSS

    return PeakRSS


@dataclass
class DeviceInfo:
    device: str
    name: str
    slug: str  # used in report file names
    memory_gib: float | None
    capability: str | None
    datasheet_bf16_tflops: float | None
    datasheet_hbm_tb_s: float | None
    torch: str
    cuda: str | None
    transformers: str | None
    trl: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def device_info(device: str) -> DeviceInfo:
    import platform
    import re

    import torch

    from prism_eval.tools.bench_judge import _version

    if device.startswith("cuda"):
        idx = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(idx)
        name = props.name
        mem: float | None = props.total_memory / 2**30
        cap: str | None = f"{props.major}.{props.minor}"
    else:
        name, mem, cap = f"CPU ({platform.processor() or platform.machine()})", None, None
    sheet = DATASHEET.get(name, {})
    slug = "cpu" if not device.startswith("cuda") else re.sub(r"[^a-z0-9.]+", "-", name.lower()).strip("-")
    return DeviceInfo(device, name, slug, round(mem, 1) if mem else None, cap, sheet.get("bf16_tflops"),
                      sheet.get("hbm_tb_s"), torch.__version__, torch.version.cuda, _version("transformers"),
                      _version("trl"))


def matmul_ceiling(device: str, dtype: Any, n: int | None = None, repeats: int = 10) -> dict[str, Any]:
    """TFLOP/s of an n x n x n matrix product on random data (mean of `repeats` after 3 warm-ups)."""
    import torch

    n = n or (8192 if device.startswith("cuda") else 512)
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
    for _ in range(3):
        torch.matmul(a, b)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        torch.matmul(a, b)
    sync(device)
    seconds = (time.perf_counter() - t0) / repeats
    del a, b
    return {"n": n, "dtype": str(dtype).replace("torch.", ""), "seconds": seconds,
            "tflops": 2 * n ** 3 / seconds / 1e12}


def copy_ceiling(device: str, mib: int | None = None, repeats: int = 10) -> dict[str, Any]:
    """TB/s of a device-to-device copy, counting bytes read plus bytes written."""
    import torch

    mib = mib or (2048 if device.startswith("cuda") else 64)
    src = torch.empty(mib * 2**20, dtype=torch.uint8, device=device).random_(0, 255)
    dst = torch.empty_like(src)
    dst.copy_(src)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        dst.copy_(src)
    sync(device)
    seconds = (time.perf_counter() - t0) / repeats
    del src, dst
    return {"mib": mib, "seconds": seconds, "tb_s": 2 * mib * 2**20 / seconds / 1e12}


def text_flops(body_params: int, tokens: int) -> float:
    """Matrix-product FLOPs of `tokens` through the decoder layers: 2 x layer parameters per token.

    The LM head and the attention scores are left out, so a fraction of peak
    computed from it is a lower bound.
    """
    return 2.0 * body_params * tokens


def vision_flops(vision_params: int, merger_params: int, patches: int, merge: int = 4) -> float:
    """The vision tower's matrix products: every block on each patch, the merger on each group of `merge`."""
    return 2.0 * ((vision_params - merger_params) * patches + merger_params * patches / merge)
