"""What sampling costs: wall time per image, network evaluations (NFE), images per second, peak memory and GFLOP per
network call, as one row for a table."""
from __future__ import annotations

import contextlib
import os
import resource
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode


def gflop_per_call(net: torch.nn.Module, x: torch.Tensor, t: torch.Tensor, *args) -> float:
    """GFLOP of one forward pass on the batch x, divided by the batch size (torch.utils.flop_counter)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(x, t, *args)
    return counter.get_total_flops() / 1e9 / x.shape[0]


def seconds_per_image_per_call(net, x: torch.Tensor, t: torch.Tensor, calls: int, context=torch.no_grad) -> float:
    """Wall time of one forward pass per image of the batch x: one warm-up call (and compilation, for a compiled
    net), then the mean of `calls` timed calls, all under `context` (no_grad, or inference_mode)."""
    with context():
        net(x, t)
        start = time.perf_counter()
        for _ in range(calls):
            net(x, t)
        return (time.perf_counter() - start) / calls / x.shape[0]


def peak_memory_mb(device) -> float:
    """Peak memory so far: CUDA's max_memory_allocated, or the process's peak RSS on the CPU."""
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


@contextlib.contextmanager
def _quiet_stderr():
    """File descriptor 2 to /dev/null: the profiler's C++ side prints start/stop lines there, which a notebook shows."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def call_memory_mb(net: torch.nn.Module, x: torch.Tensor, t: torch.Tensor) -> float:
    """Peak tensor memory (MB) of one no-grad call net(x, t): the weights, the input and every activation alive at
    the worst moment. On the CPU, from the profiler's memory timeline (torch marks it deprecated in favour of CUDA's
    memory history, which has no CPU counterpart); on CUDA, max_memory_allocated over the call above what was allocated
    before it, plus the weights and the input."""
    import json
    import tempfile
    import warnings

    from torch.profiler import ProfilerActivity, profile

    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
        torch.cuda.reset_peak_memory_stats(x.device)
        before = torch.cuda.memory_allocated(x.device)
        with torch.no_grad():
            net(x, t)
        resident = sum(p.numel() * p.element_size() for p in net.parameters()) + x.numel() * x.element_size()
        return (torch.cuda.max_memory_allocated(x.device) - before + resident) / 2**20
    with _quiet_stderr(), torch.no_grad(), profile(activities=[ProfilerActivity.CPU], profile_memory=True,
                                                   record_shapes=True, with_stack=True) as prof:
        net(x, t)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        prof.export_memory_timeline(f"{tmp}/timeline.json", device="cpu")
        _, sizes = json.loads(Path(tmp, "timeline.json").read_text())  # [times, [bytes per category] per time]
    return max(sum(s) for s in sizes) / 2**20


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


# The U-Nets of the course's hub models, as UNet2DModel configurations (from the config.json of each model on the
# Hugging Face hub; norm and embedding details left at diffusers' defaults, which do not change the cost). Offline
# they are built with random weights to measure what one network call costs at their resolution: cost, not images.
HUB_UNETS = {
    "google/ddpm-cifar10-32": dict(
        sample_size=32, in_channels=3, out_channels=3, layers_per_block=2, block_out_channels=(128, 256, 256, 256),
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D")),
    "butterflies-128 (diffusers' training tutorial)": dict(
        sample_size=128, in_channels=3, out_channels=3, layers_per_block=2,
        block_out_channels=(128, 128, 256, 256, 512, 512),
        down_block_types=("DownBlock2D",) * 4 + ("AttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D") + ("UpBlock2D",) * 4),
    "google/ddpm-church-256": dict(
        sample_size=256, in_channels=3, out_channels=3, layers_per_block=2,
        block_out_channels=(128, 128, 256, 256, 512, 512),
        down_block_types=("DownBlock2D",) * 4 + ("AttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D") + ("UpBlock2D",) * 4),
}


def architecture_cost(name: str, batch_size: int = 1, calls: int = 2, seed: int = 0) -> dict:
    """Parameters, GFLOP per image per call and measured seconds per image per call (after one warm-up call) of a
    randomly initialised UNet2DModel with the configuration HUB_UNETS[name], on the CPU."""
    from diffusers import UNet2DModel

    from helpers.denoisers import DiffusersUNet

    if name not in HUB_UNETS:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(HUB_UNETS)}")
    config = HUB_UNETS[name]
    torch.manual_seed(seed)
    net = DiffusersUNet(UNet2DModel(**config).eval())
    x = torch.randn(batch_size, config["in_channels"], config["sample_size"], config["sample_size"])
    t = torch.full((batch_size,), 500)
    seconds = seconds_per_image_per_call(net, x, t, calls)
    return {"architecture": name, "resolution": config["sample_size"],
            "parameters (M)": sum(p.numel() for p in net.parameters()) / 1e6,
            "GFLOP per image per call": gflop_per_call(net, x, t),
            "s per image per call": seconds, "min per image, 1000 steps": seconds * 1000 / 60,
            "min per image, 50 steps": seconds * 50 / 60}
