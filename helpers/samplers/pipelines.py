"""The hub's pretrained pipelines, for users who are online and have a GPU: DiT-XL/2 (notebook 10) and Stable
Diffusion (notebook 11), through diffusers. Offline, loading fails at once with one line that names what is missing
and how to get it; the workbook's own small models (checkpoints/) answer the same questions here.

    pipe = load_pipeline("dit", device="cuda")                     # facebook/DiT-XL-2-256
    images = dit_samples(pipe, ["golden retriever", "volcano"], steps=25, guidance=4.0, seed=0)
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch

from helpers.denoisers import DiffusersModelError
from helpers.paths import hub_reachable

# kind -> (diffusers class, default hub id, what it needs)
HUB_PIPELINES = {
    "dit": ("DiTPipeline", "facebook/DiT-XL-2-256", "about 3 GB of weights (DiT-XL/2, 675M parameters, and the SD-VAE) and a GPU"),
    "stable-diffusion": ("StableDiffusionPipeline", "stabilityai/stable-diffusion-2-1-base",
                         "about 5 GB of weights and a GPU"),
}


def load_pipeline(kind: str, hub_id: str | None = None, device: str = "cuda", dtype=None):
    """A diffusers pipeline of `kind` ("dit" or "stable-diffusion") from a hub id or a local save_pretrained folder.
    Without a network only the local Hugging Face cache can serve a hub id (no retries)."""
    if kind not in HUB_PIPELINES:
        raise ValueError(f"unknown pipeline kind {kind!r}; known: {', '.join(HUB_PIPELINES)}")
    class_name, default, needs = HUB_PIPELINES[kind]
    hub_id = hub_id or default
    local = Path(hub_id).exists()
    opts = {} if local or hub_reachable() else {"local_files_only": True}
    try:
        import diffusers

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks.*")
            pipe = getattr(diffusers, class_name).from_pretrained(hub_id, torch_dtype=dtype, **opts)
    except ImportError as err:  # diffusers' message for a missing optional package spans lines: name it in one
        package = next((w for w in ("transformers", "accelerate", "sentencepiece") if w in str(err)), err.name or "?")
        raise DiffusersModelError(
            f"{class_name} {hub_id!r} cannot load here: it needs the {package} package (`pip install {package}`), which "
            f"the set-up leaves out because the pipeline is only of use online, with {needs}") from err
    except Exception as err:
        where = (f"the folder {hub_id}" if local else "the local Hugging Face cache (huggingface.co is not reachable "
                 "from here)" if opts else "the Hugging Face hub")
        raise DiffusersModelError(
            f"{class_name} {hub_id!r} is not available from {where} ({type(err).__name__}); it needs {needs}: on a "
            f"machine with internet run `huggingface-cli download {hub_id} --local-dir DIR` and pass DIR") from err
    return pipe.to(device)


def dit_samples(pipe, labels, steps: int = 25, guidance: float = 4.0, seed: int = 0):
    """ImageNet samples of a DiTPipeline: `labels` are class ids or ImageNet class names (pipe.get_label_ids)."""
    ids = pipe.get_label_ids(list(labels)) if any(isinstance(x, str) for x in labels) else list(labels)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    return pipe(class_labels=ids, num_inference_steps=steps, guidance_scale=guidance, generator=generator).images
