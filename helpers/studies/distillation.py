"""Notebook 06 (progressive distillation): the one-step check of every round by timestep (round 0 included), the
rounds' cost and convergence, from the students' model cards."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from helpers.checkpoints import read_card
from helpers.denoisers import from_checkpoint
from helpers.diffusion import alpha_bar_at
from helpers.paths import ROOT
from helpers.training.distill import grid, teacher_path


def _folder(path) -> Path:
    return Path(path) if Path(path).is_absolute() else ROOT / path


def step_check(student_folder, x0: torch.Tensor, seed: int, device="cpu") -> pd.DataFrame:
    """For each step i of a student's grid, on the test digits x0 noised to its t_i (fresh noise per step, from
    `seed`): the RMS per pixel between one student step and the teacher's k steps over the same span, and between
    one teacher step and those k steps (what an untrained student would miss; 0 for the conversion round, k = 1).
    k is the round's teacher steps per student step; "step RMS" is how far the k teacher steps move z_t."""
    card = read_card(_folder(student_folder))
    d = card["distillation"]
    k = 1 if d["convert"] else card["train"].get("ratio", 2)
    student, _ = from_checkpoint(_folder(student_folder), device=device)
    teacher, _ = from_checkpoint(_folder(d["teacher"]), device=device)
    T, n = teacher.alpha_bar.shape[0], d["student_steps"]
    s_grid, t_grid = grid(T, n), grid(T, d["teacher_steps"])
    g, rows = torch.Generator().manual_seed(seed), []
    for i in range(n):
        t, t_next = s_grid[i], s_grid[i + 1]
        a = float(alpha_bar_at(teacher.alpha_bar, t)) ** 0.5
        z_t = (a * x0 + (1 - a * a) ** 0.5 * torch.randn(x0.shape, generator=g)).to(device)
        with torch.no_grad():
            target = teacher_path(teacher, z_t, t_grid[k * i: k * i + k + 1])
            rms = lambda z: (z - target).flatten(1).pow(2).mean(1).sqrt().mean().item()
            rows.append({"student steps": n, "step": i, "t": t, "t_next": t_next,
                         "student RMS": rms(teacher_path(student, z_t, [t, t_next])),
                         "teacher one-step RMS": rms(teacher_path(teacher, z_t, [t, t_next])),
                         "step RMS": rms(z_t)})  # how far the teacher's k steps move z_t: the scale of the errors
    return pd.DataFrame(rows)


def rounds_table(cards: list[dict]) -> pd.DataFrame:
    """One row per round: its teacher and grids, optimizer steps, where the cool-down began (the stopping rule's
    plateau, or the --steps cap), minutes, final loss, and the held-out one-step error at the end against the
    teacher's own one-step error on the same images."""
    rows = []
    for c in cards:
        d, h = c["distillation"], c.get("heldout", {})
        last = c["heldout_history"][-1][1] if c.get("heldout_history") else None
        ref = h.get("teacher_one_step_rms") or None
        rows.append({"student steps": d["student_steps"], "teacher": Path(d["teacher"]).name,
                     "teacher steps": d["teacher_steps"],
                     "round": "convert eps -> v" if d["convert"] else f"{d['teacher_steps'] // d['student_steps']} to 1",
                     "optimizer steps": c["step"], "cool-down from step": c.get("decay_start"),
                     "batch": c["train"]["batch_size"], "lr": c["train"]["lr"], "minutes": c["wall_time_s"] / 60,
                     "final loss": c["final_loss"], "held-out RMS": last, "teacher one-step RMS": ref,
                     "left of the teacher's one-step error": None if last is None or not ref else last / ref})
    return pd.DataFrame(rows)


def plot_heldout(cards: list[dict], axes) -> None:
    """The stopping rule's evidence: each round's held-out one-step error against optimizer steps, the teacher's own
    one-step error dashed and the start of the cool-down dotted."""
    for ax, c in zip(axes, cards):
        steps, values = zip(*c["heldout_history"])
        ax.plot(steps, values, "o-", ms=3)
        if c.get("heldout", {}).get("teacher_one_step_rms"):
            ax.axhline(c["heldout"]["teacher_one_step_rms"], color="k", ls="--", lw=0.8)
        if c.get("decay_start") is not None:
            ax.axvline(c["decay_start"], color="gray", ls=":", lw=0.8)
        ax.set_yscale("log")
        ax.set_title(f"-> {c['distillation']['student_steps']} steps", fontsize=9)
        ax.set_xlabel("optimizer step", fontsize=8)
        ax.grid(alpha=0.3)
