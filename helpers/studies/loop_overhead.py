"""What a sampling loop costs beyond its network calls, ours against diffusers', and how close the network gets to
the best this CPU reaches.

    python bench/loop_overhead.py                      # writes bench/results/loop_overhead.json
    python bench/loop_overhead.py --steps 5 --batch-size 8 --repeats 1 --out /tmp/o.json   # a quick look

1. The same randomly initialised diffusers UNet2DModel (MNIST-sized: 28 x 28, about the shipped model's width), saved
   with save_pretrained and loaded with our `load_denoiser` (the real loading path), the same x_T, the same timesteps:
   - network alone: `steps` calls of the network on the batch, nothing else;
   - our loop: `helpers.samplers.sample_ddim` (eta = 0) through the Denoiser adapter;
   - diffusers' loop: `DDIMScheduler.step` after each `unet(x, t).sample`, as in DDIMPipeline (with
     use_clipped_model_output=True, which is what our x0 clipping does).
   Overhead = loop time / network time - 1; each is the median of `repeats` interleaved runs, the order
   rotated each round.
2. Variants of the network call on the shipped U-Net (checkpoints/ddpm-mnist): eager, channels_last, inference_mode,
   torch.compile; ms per image per call.
3. GFLOP/s of the network (torch.utils.flop_counter FLOPs / time) against the best this CPU reaches with PyTorch's
   own float32 kernels at the same thread count: the fastest of large matrix products (torch.mm, 1024 to 4096) and
   large 3 x 3 convolutions in channels_last (the U-Net's main kernel; oneDNN on this CPU runs them faster than
   torch.mm). FLOPs count 2 per multiply-add, as the flop counter does, so a kernel that saved multiplications
   (Winograd) would show as more GFLOP/s: the reference is "the best kernel here", not the silicon's FMA limit.
"""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from helpers.paths import ROOT

from helpers.checks import positive_int
from helpers.cli import ArgumentParser
from helpers.evaluation.cost import gflop_per_call, seconds_per_image_per_call
from helpers.denoisers import from_checkpoint, load_denoiser
from helpers.samplers import sample_ddim


def make_diffusers_model(folder: Path) -> None:
    from diffusers import DDIMScheduler, UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=28, in_channels=1, out_channels=1, layers_per_block=1,
                       block_out_channels=(32, 64, 128), norm_num_groups=8,
                       down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"))
    unet.save_pretrained(folder / "unet")
    DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=True).save_pretrained(folder / "scheduler")


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def loop_overhead(steps: int, batch_size: int, repeats: int) -> dict:
    from diffusers import DDIMScheduler

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_diffusers_model(folder)
        denoiser, _ = load_denoiser(str(folder))
        scheduler = DDIMScheduler.from_pretrained(folder / "scheduler")
    unet = denoiser.net.unet
    scheduler.set_timesteps(steps)
    timesteps = scheduler.timesteps.tolist()
    x_T = torch.randn(batch_size, 1, 28, 28, generator=torch.Generator().manual_seed(0))

    @torch.no_grad()
    def network_only():
        for t in timesteps:
            unet(x_T, torch.full((batch_size,), t)).sample

    @torch.no_grad()
    def diffusers_loop():
        x = x_T
        for t in scheduler.timesteps:
            x = scheduler.step(unet(x, t).sample, t, x, eta=0.0, use_clipped_model_output=True).prev_sample
        return x

    def our_loop():
        return sample_ddim(denoiser, x_T, timesteps)

    diff = (our_loop() - diffusers_loop()).abs().max().item()  # also a warm-up of both
    contenders = {"network": network_only, "ours": our_loop, "diffusers": diffusers_loop}
    times = {name: [] for name in contenders}
    for r in range(repeats):  # interleaved, the order rotated each round so that no contender always goes first
        k = r % len(contenders)
        names = list(contenders)[k:] + list(contenders)[:k]
        for name in names:
            times[name].append(timed(contenders[name]))
    med = {k: statistics.median(v) for k, v in times.items()}
    flops = gflop_per_call(denoiser.net, x_T, torch.full((batch_size,), 500)) * batch_size * steps
    return {"steps": steps, "batch_size": batch_size, "repeats": repeats, "parameters": sum(p.numel() for p in unet.parameters()),
            "seconds_median": med, "seconds_all": times,
            "overhead_ours": med["ours"] / med["network"] - 1, "overhead_diffusers": med["diffusers"] / med["network"] - 1,
            "ours_over_diffusers": med["ours"] / med["diffusers"], "max_abs_diff_of_final_images": diff,
            "network_gflops_per_s": flops / med["network"]}


def network_variants(batch_size: int, calls: int) -> dict:
    x = torch.randn(batch_size, 1, 28, 28)
    t = torch.full((batch_size,), 500)
    results = {}
    for name in ("eager", "channels_last", "channels_last+inference_mode", "channels_last+compile"):
        denoiser, _ = from_checkpoint(ROOT / "checkpoints" / "ddpm-mnist", channels_last="channels_last" in name)
        net = torch.compile(denoiser.net) if "compile" in name else denoiser.net
        xin = x.contiguous(memory_format=torch.channels_last) if "channels_last" in name else x
        context = torch.inference_mode if "inference_mode" in name else torch.no_grad
        results[name] = {"ms_per_image_per_call": 1e3 * seconds_per_image_per_call(net, xin, t, calls, context)}
    gflop = gflop_per_call(denoiser.net, x, t)
    for row in results.values():
        row["gflops_per_s"] = gflop / (row["ms_per_image_per_call"] / 1e3)
    return {"batch_size": batch_size, "calls": calls, "gflop_per_image_per_call": gflop, "variants": results}


def kernel_gflops(repeats: int = 5) -> dict:
    """GFLOP/s of large float32 kernels, best of `repeats` runs each: the reference for "the best this CPU reaches"."""
    results = {}
    for n in (1024, 2048, 4096):
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)
        results[f"mm {n}"] = 2 * n**3 / min(timed(lambda: torch.mm(a, b)) for _ in range(repeats)) / 1e9
    for batch, channels, size in ((64, 128, 28), (64, 256, 14)):
        conv = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False).to(memory_format=torch.channels_last)
        x = torch.randn(batch, channels, size, size).contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            conv(x)
            best = min(timed(lambda: conv(x)) for _ in range(repeats))
        results[f"conv3x3 {channels}ch {size}x{size} batch {batch}"] = 2 * batch * size**2 * channels**2 * 9 / best / 1e9
    return results


def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=positive_int, default=50)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--repeats", type=positive_int, default=5)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "loop_overhead.json")
    args = p.parse_args(argv)
    result = {"threads": torch.get_num_threads(), "torch": torch.__version__}
    result["loop"] = loop_overhead(args.steps, args.batch_size, args.repeats)
    result["network"] = network_variants(args.batch_size * 4, max(3, args.repeats))
    result["kernels_gflops_per_s"] = kernel_gflops()
    result["cpu_peak_gflops_per_s"] = max(result["kernels_gflops_per_s"].values())
    result["network_fraction_of_peak"] = {k: v["gflops_per_s"] / result["cpu_peak_gflops_per_s"]
                                          for k, v in result["network"]["variants"].items()}
    result["command"] = "python bench/loop_overhead.py " + " ".join(argv if argv is not None else sys.argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    loop = result["loop"]
    print(f"loop overhead over the network time: ours {100 * loop['overhead_ours']:.2f}%, diffusers "
          f"{100 * loop['overhead_diffusers']:.2f}%; ours / diffusers = {loop['ours_over_diffusers']:.3f} "
          f"(final images differ by {loop['max_abs_diff_of_final_images']:.1e})")
    print("kernels:", ", ".join(f"{k} {v:.0f}" for k, v in result["kernels_gflops_per_s"].items()), "GFLOP/s")
    for name, row in result["network"]["variants"].items():
        print(f"{name}: {row['ms_per_image_per_call']:.2f} ms/image/call, {row['gflops_per_s']:.1f} GFLOP/s "
              f"({100 * result['network_fraction_of_peak'][name]:.1f}% of the {result['cpu_peak_gflops_per_s']:.0f} GFLOP/s of the best kernel)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
