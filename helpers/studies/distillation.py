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


def fid_table(pd_rows: pd.DataFrame, samplers_rows: pd.DataFrame | None = None, target: str = "ddim-50-eta0",
              reference: str = "ddpm-250-trailing") -> tuple[pd.DataFrame, list[str]]:
    """Issue 40's table: each finished student of the chain (rows "pd-K" of the `pd` grids' CSV, five sets of N from
    the same seeds) with its FID and t-interval, and the paired per-set differences against the target (DDIM-50),
    against the teacher's own DDIM on the student's grid (trailing, no clipping), against the best training-free
    sampler at the same NFE and against the reference (ancestral DDPM-250), the last two from the `samplers` grid's
    CSV where it has the row. Returns the table and the verdict sentences."""
    from helpers.evaluation import stats
    from helpers.studies.sampler_fid import paired_sets

    rows = pd.concat([pd_rows, samplers_rows], ignore_index=True) if samplers_rows is not None else pd_rows.reset_index(drop=True)
    rows = rows[rows.fid_sets.fillna("").astype(str).str.strip().ne("")].drop_duplicates("name", keep="first")
    by, table, lines = rows.set_index("name"), [], []
    students = rows.name.str.match(r"(pd|student)-\d+$")  # a student's row names the sampler its card gives (ddim)
    training_free = rows[~students & ~rows.sampler.isin(["lsq-ms", "lsq-sde", "cn-2m"]) & rows.name.ne(reference)]
    for name in sorted((n for n in by.index if n.startswith("pd-")), key=lambda n: -int(n.split("-")[1])):
        k, r = int(name.split("-")[1]), by.loc[name]
        row = {"student": name, "NFE": k, "FID": r.fid, "lo": r.fid_lo, "hi": r.fid_hi}
        rivals = training_free[training_free.nfe == k]
        compare = {"DDIM-50": target, f"teacher DDIM-{k}": f"ddim-{k}-eta0-trailing-noclip",
                   "best training-free": rivals.loc[rivals.fid.idxmin(), "name"] if len(rivals) else None,
                   "DDPM-250": reference}
        for label, other in compare.items():
            if other is None or other not in by.index:
                continue
            d = paired_sets(by, name, other)
            row.update({f"- {label}": d.value, f"{label} lo": d.lo, f"{label} hi": d.hi})
            if label == "best training-free":
                row["best training-free"] = other
            lines.append(f"{name} against {label} ({other}): " + stats.verdict(d, (name, other)))
        table.append(row)
    return pd.DataFrame(table), lines


def chain_cost(cards: list[dict], rows: pd.DataFrame, student: str, others: dict) -> list[str]:
    """The chain's CPU hours (every round's wall time, one thread) and the break-even number of images of `student`
    against each of `others` ({label: row name}): the one-off training cost over the seconds per image saved
    (stats.break_even; infinite where the student is not faster)."""
    from helpers.evaluation.stats import break_even

    seconds = sum(c["wall_time_s"] for c in cards)
    by = rows.drop_duplicates("name").set_index("name")
    lines = [f"the chain: {len(cards)} rounds, {seconds / 3600:.1f} CPU hours"]
    for label, other in others.items():
        if student in by.index and other in by.index:
            n = break_even(seconds, by.loc[other, "s_per_image"], by.loc[student, "s_per_image"])
            lines.append(f"break-even of {student} against {label} ({other}): {n:,.0f} images "
                         f"({by.loc[other, 's_per_image']:.4f} against {by.loc[student, 's_per_image']:.4f} s per image)")
    return lines
