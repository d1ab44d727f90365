"""What sampling costs: wall time per image, network evaluations (NFE), images per second, peak memory and GFLOP per
network call, as one row for a table."""
from __future__ import annotations

import resource
import time

import torch
from torch.utils.flop_counter import FlopCounterMode


def gflop_per_call(net: torch.nn.Module, x: torch.Tensor, t: torch.Tensor, *args) -> float:
    """GFLOP of one forward pass on the batch x, divided by the batch size (torch.utils.flop_counter)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(x, t, *args)
    return counter.get_total_flops() / 1e9 / x.shape[0]


def peak_memory_mb(device) -> float:
    """Peak memory so far: CUDA's max_memory_allocated, or the process's peak RSS on the CPU."""
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def measure(run, denoiser, num_images: int, device="cpu") -> dict:
    """Call run() (which draws num_images with `denoiser`) once and report its cost; NFE is counted exactly by the
    denoiser (one call on a batch counts once, per image it is calls x batch / num_images)."""
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        torch.cuda.synchronize(device)
    nfe_before = denoiser.nfe
    start = time.perf_counter()
    run()
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "s/image": seconds / num_images, "images/s": num_images / seconds,
            "NFE (calls)": denoiser.nfe - nfe_before, "peak memory (MB)": peak_memory_mb(device)}
