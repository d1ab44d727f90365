"""Progressive distillation, Salimans & Ho (ICLR 2022) Algorithm 2: a student learns to make one DDIM step land where
two DDIM steps of its teacher land, then becomes the next teacher, halving the number of sampling steps each round.

    python -m helpers.distill --teacher checkpoints/ddpm-mnist --teacher-steps 128 --convert \
        --out checkpoints/distill/v-128 --steps 1000                      # round 0: eps -> v on the teacher's grid
    python -m helpers.distill --teacher checkpoints/distill/v-128 --out checkpoints/distill/v-64 --steps 1000
    python -m helpers.distill --out checkpoints/distill/v-64 --steps 2000 --resume       # continue a round

Notation (alpha_t = sqrt(alpha_bar_t), sigma_t = sqrt(1 - alpha_bar_t), z_t = alpha_t x + sigma_t eps):
- The student's grid has N timesteps t_0 > t_1 > ... > t_{N-1} ("trailing" spacing: t_0 = T - 1) and a last step
  to t_N = -1 (clean data, alpha = 1, sigma = 0); the teacher's grid of 2N steps holds it and the midpoints t'.
- One DDIM step (eta = 0) from t to s with a prediction x_hat: z_s = alpha_s x_hat + (sigma_s / sigma_t)(z_t - alpha_t x_hat).
- The target: the teacher takes two steps z_t -> z_t' -> z_t''; the x_tilde for which one student step from t lands
  exactly on z_t'' solves the step above for x_hat:
      x_tilde = (z_t'' - (sigma_t'' / sigma_t) z_t) / (alpha_t'' - (sigma_t'' / sigma_t) alpha_t),
  which for the last step (sigma_t'' = 0) is z_t'' itself, the teacher's clean image.
- The student predicts v = alpha_t eps - sigma_t x (Salimans & Ho sec. 4): x_hat = alpha_t z_t - sigma_t v_hat stays
  bounded where alpha_t -> 0, unlike x_hat = (z_t - sigma_t eps_hat) / alpha_t, which multiplies eps_hat's error by
  sigma_t / alpha_t (about 160 at t = 999 of the linear schedule). Its loss ||v_tilde - v_hat||^2 equals
  (1 + SNR_t) ||x_tilde - x_hat||^2: the paper's "SNR+1" weighting.
- `--prediction eps --weighting step` keeps the teacher's own output, so the student starts as the teacher exactly;
  the loss is the error of the step itself, ||z_s(student) - z_t''||^2 = c^2 ||x_hat - x_tilde||^2 with c = alpha_s -
  (sigma_s / sigma_t) alpha_t, normalised to mean 1 over the grid (objectives.step_weights). `--convert` (round 0)
  keeps the teacher's grid and regresses its own x_hat: an eps-network becomes a v-network before any halving.

x_T ~ N(0, I) is used as z_999 (alpha_bar_999 = 4e-5 is not 0: 0.6% of x's scale). Students are trained and sampled
without clipping x_hat, so the identity above holds for their own sampler; the card records the student's grid.
"""
from __future__ import annotations

import shlex
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from helpers import checkpoints as ckpt
from helpers.checks import non_negative_float, non_negative_int, positive_float, positive_int, unit_float
from helpers.cli import ArgumentParser, after_interrupt, user_error, check_resume, given_options, run_status
from helpers.datasets.images import DataUnavailableError, load_images
from helpers.denoisers import Denoiser, from_checkpoint
from helpers.diffusion import alpha_bar_at, ddim_step, per_sample
from helpers.objectives import step_weights
from helpers.training.loop import BatchOrder, LoopConfig, check_out, fit, make_accelerator, step_generator
from helpers.models import build_model, count_parameters
from helpers.schedules import get_timesteps

SPACING = "trailing"  # t_0 = T - 1; the grid of N steps is every other point of the grid of 2N steps
PREDICTIONS, WEIGHTINGS = ("v", "eps"), ("snr+1", "step")  # the student's output, its loss


@dataclass
class DistillConfig(LoopConfig):
    teacher: str = "checkpoints/ddpm-mnist"
    teacher_steps: int = 128  # the teacher's grid; the student's has half (the same with convert)
    convert: bool = False  # round 0: regress the teacher's x_hat on its own grid (eps -> v), no halving
    ratio: int = 2  # teacher steps per student step (2: a halving round; 4: round 0 from the teacher's 128 to 32)
    dataset: str = "mnist"
    lr: float = 1e-4
    warmup: int = 50
    checkpoint_every: int = 100
    log_every: int = 25
    channels_last: bool = True
    heldout: int = 512
    prediction: str = "v"  # the student's output: "v" (Salimans & Ho) or "eps" (the teacher's own: starts as the teacher)
    weighting: str = "snr+1"  # "snr+1": ||v_tilde - v_hat||^2; "step": the one step's error in z, mean weight 1

    @property
    def teacher_per_student(self) -> int:
        return 1 if self.convert else self.ratio

    @property
    def student_steps(self) -> int:
        return self.teacher_steps // self.teacher_per_student


def grid(T: int, num_steps: int) -> list[int]:
    """The decreasing timesteps of a sampling grid of `num_steps` steps, followed by -1 (the clean data)."""
    return [int(t) for t in get_timesteps(T, num_steps, SPACING)] + [-1]


def check_nested(T: int, teacher_steps: int, ratio: int = 2) -> None:
    """The student's grid (N steps) must be every `ratio`-th point of the teacher's (ratio x N steps)."""
    if teacher_steps < ratio or teacher_steps % ratio:
        what = "an even number of at least 2 to halve" if ratio == 2 else f"a multiple of --ratio {ratio}"
        raise ValueError(f"--teacher-steps must be {what}, got {teacher_steps}")
    if grid(T, teacher_steps)[::ratio] != grid(T, teacher_steps // ratio):
        raise ValueError(f"the {SPACING} grids of {teacher_steps} and {teacher_steps // ratio} steps of T = {T} are not "
                         "nested; choose another --teacher-steps")


def x_tilde(z_t: torch.Tensor, z_s: torch.Tensor, alpha_bar: torch.Tensor, t, s) -> torch.Tensor:
    """The x_hat for which one DDIM step (eta = 0) from z_t at t lands on z_s at s < t (Algorithm 2's target); t and s
    are ints or [N] tensors of timesteps (s = -1: the clean data)."""
    if bool((torch.as_tensor(s) >= torch.as_tensor(t)).any()) or bool((torch.as_tensor(s) < -1).any()):
        raise ValueError(f"the target is for a step from t to an earlier s (-1 <= s < t), got t = {t}, s = {s}")
    ab_t, ab_s = (per_sample(alpha_bar_at(alpha_bar, u), z_t) for u in (t, s))
    ratio = (1 - ab_s) ** 0.5 / (1 - ab_t) ** 0.5  # sigma_s / sigma_t
    return ((z_s - ratio * z_t) / (ab_s**0.5 - ratio * ab_t**0.5)).to(z_t.dtype)


@torch.no_grad()
def teacher_path(teacher, z_t: torch.Tensor, path: list, y=None) -> torch.Tensor:
    """Where the teacher's DDIM steps (eta = 0, no clipping) along `path` = [t, t_1, ..., t_next] take z_t; the
    timesteps are ints or [N] tensors (one per sample, one batched network call per step)."""
    for t, s in zip(path[:-1], path[1:]):
        z_t = ddim_step(teacher, z_t, t, s, y, clip_x0=False)[0]
    return z_t


@torch.no_grad()
def distillation_target(teacher, z_t: torch.Tensor, t, t_mid, t_next, y=None) -> torch.Tensor:
    """x_tilde of Algorithm 2: two teacher DDIM steps t -> t_mid -> t_next (no clipping), solved for the x_hat of one
    step t -> t_next; the timesteps are ints or [N] tensors. t_mid may be a list of intermediate timesteps (a round
    that replaces several teacher steps by one), or None: the teacher's own x_hat at t (the conversion round)."""
    if t_mid is None:
        return ddim_step(teacher, z_t, t, t_next, y, clip_x0=False)[1]
    middle = t_mid if isinstance(t_mid, (list, tuple)) else [t_mid]
    z_next = teacher_path(teacher, z_t, [t, *middle, t_next], y)
    return x_tilde(z_t, z_next, teacher.alpha_bar, t, t_next)


@torch.no_grad()
def step_errors(teacher, student, z_t: torch.Tensor, t, t_mid, t_next) -> tuple[torch.Tensor, torch.Tensor]:
    """Where two teacher steps t -> t_mid -> t_next land (eta = 0, no clipping), against one student step and one
    teacher step from t to t_next: the per-image RMS distances ([N] tensors). A round trains the first to 0; the
    second is what the student would miss without training."""
    z_mid, _, _ = ddim_step(teacher, z_t, t, t_mid, clip_x0=False)
    z_two, _, _ = ddim_step(teacher, z_mid, t_mid, t_next, clip_x0=False)
    rms = lambda z: (z - z_two).flatten(1).pow(2).mean(1).sqrt()
    return rms(ddim_step(student, z_t, t, t_next, clip_x0=False)[0]), rms(ddim_step(teacher, z_t, t, t_next, clip_x0=False)[0])


def rounds(folder) -> list[dict]:
    """The model cards of the students under `folder` (one sub-folder each), from the most steps to the fewest:
    the rounds of one distillation chain."""
    cards = [ckpt.read_card(card.parent) for card in Path(folder).glob("*/model_card.json")]
    return sorted((c for c in cards if "distillation" in c), key=lambda c: -c["distillation"]["student_steps"])


def distill_batch(data, order: BatchOrder, step: int, cfg: DistillConfig, T: int):
    """x_0, the index i of the student's step (uniform over its grid) and eps of global batch `step`, from the
    generator of (seed, step)."""
    g = step_generator(cfg.seed, step)
    x0 = data.images[order(step)]
    i = torch.randint(0, cfg.student_steps, (len(x0),), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    return x0, i, eps


def distill_objective(teacher, data, cfg: DistillConfig):
    """The student's loss on this process's slice of global batch `step` (helpers.training.loop): ||v_tilde - v_hat||^2
    (weighting "snr+1", v-prediction), or the squared error of the student's one step in z (weighting "step": the
    output's squared error times step_weights); each image has its own step i of the student's grid, and the
    teacher's steps are batched over them."""
    alpha_bar = teacher.alpha_bar
    T = alpha_bar.shape[0]
    student_grid = torch.tensor(grid(T, cfg.student_steps))
    teacher_grid = torch.tensor(grid(T, cfg.teacher_steps))
    order = BatchOrder(len(data), cfg.batch_size, cfg.seed)
    weights = step_weights(alpha_bar.cpu(), student_grid, cfg.prediction).float()

    def objective(model, step: int, ctx):
        x0, i, eps = (ctx.local(v) for v in distill_batch(data, order, step, cfg, T))
        t, t_next = student_grid.to(i.device)[i], student_grid.to(i.device)[i + 1]
        k = cfg.teacher_per_student
        t_mid = None if k == 1 else [teacher_grid.to(i.device)[k * i + j] for j in range(1, k)]
        ab = per_sample(alpha_bar_at(alpha_bar, t), x0)
        a, s = ab.sqrt().to(x0.dtype), (1 - ab).sqrt().to(x0.dtype)  # alpha_t, sigma_t
        z_t = a * x0 + s * eps
        target = distillation_target(teacher, z_t, t, t_mid, t_next)
        eps_tilde = (z_t - a * target) / s
        wanted = a * eps_tilde - s * target if cfg.prediction == "v" else eps_tilde  # v = alpha eps - sigma x
        if ctx.channels_last:
            z_t = z_t.contiguous(memory_format=torch.channels_last)
        out = model(z_t, t).float()
        per_image = (out - wanted).pow(2).flatten(1).mean(1)
        if cfg.weighting == "step":
            per_image = per_image * weights.to(i.device)[i]
        return per_image.mean()

    return objective


def test_split(spec: str) -> str:
    """The test split of a data set spec: mnist -> mnist:test, shapes:32 -> shapes:32:test, moving-mnist:8:train ->
    moving-mnist:8:test (the held-out images of the stopping rule)."""
    parts = spec.split(":")
    sized = parts[0] in ("shapes", "moving-mnist")
    if parts[0] not in ("mnist", "digits") and not sized:
        raise ValueError(f"--eval-every needs a test split of --dataset {spec}; the stopping rule supports mnist, digits, "
                         "shapes:S and moving-mnist:F")
    return ":".join(parts[: 2 if sized else 1] + ["test"])


def heldout_check(teacher, cfg: DistillConfig, device) -> tuple[callable, dict]:
    """The stopping rule's measurement: `cfg.heldout` test images, each at step i = n mod N of the student's grid with
    its own fixed noise; the teacher's endpoints (its k steps, and its single step over the same span) are computed
    once. Returns evaluate(net) -> the mean over images of the RMS distance between the student's one step and the
    teacher's k steps, and a summary with the teacher's own one-step error on the same set (0 for conversion)."""
    T = teacher.alpha_bar.shape[0]
    k, n_student = cfg.teacher_per_student, cfg.student_steps
    x0 = load_images(test_split(cfg.dataset)).images[: cfg.heldout].to(device)
    g = torch.Generator().manual_seed(10_000 + cfg.seed)
    eps = torch.randn(x0.shape, generator=g).to(device)
    i = torch.arange(len(x0), device=device) % n_student
    student_grid, teacher_grid = (torch.tensor(grid(T, n), device=device) for n in (n_student, cfg.teacher_steps))
    t, t_next = student_grid[i], student_grid[i + 1]
    ab = per_sample(alpha_bar_at(teacher.alpha_bar, t), x0)
    z_t = ab.sqrt().to(x0.dtype) * x0 + (1 - ab).sqrt().to(x0.dtype) * eps
    path = [t, *[teacher_grid[k * i + j] for j in range(1, k)], t_next]
    with torch.no_grad():
        z_end = torch.cat([teacher_path(teacher, z, [p[c] for p in path]) for c, z in
                           zip(torch.arange(len(x0)).split(128), z_t.split(128))])
    rms = lambda z: (z - z_end).flatten(1).pow(2).mean(1).sqrt()
    one_step = rms(teacher_path(teacher, z_t, [t, t_next])) if k > 1 else torch.zeros(len(x0))

    @torch.no_grad()
    def evaluate(net) -> float:
        student = Denoiser(net, teacher.schedule, cfg.prediction, channels_last=teacher.channels_last)
        return float(rms(teacher_path(student, z_t, [t, t_next])).mean())

    return evaluate, {"images": len(x0), "split": "test", "teacher_one_step_rms": float(one_step.mean()),
                      "teacher_one_step_rms_by_step": [float(one_step[i == n].mean()) for n in range(n_student)]}


def load_teacher(folder: str, device) -> tuple[torch.nn.Module, dict]:
    """The teacher's Denoiser (EMA weights) and card; a student of an earlier round is a teacher like any other."""
    teacher, card = from_checkpoint(folder, device=device)
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher, card


def describe(card: dict, cfg: DistillConfig, n_params: int) -> dict:
    """The student's model card (static part): the teacher's network and schedule, its prediction, its own grid."""
    return {
        "kind": "ddpm",
        "architecture": card.get("architecture", "unet"),
        "model": card["model"],
        "parameters": n_params,
        "schedule": card["schedule"],
        "prediction": cfg.prediction,
        "sampling": {"sampler": "ddim", "steps": cfg.student_steps, "spacing": SPACING, "eta": 0.0, "clip_x0": False},
        "distillation": {"teacher": cfg.teacher, "teacher_steps": cfg.teacher_steps, "student_steps": cfg.student_steps,
                         "convert": cfg.convert, "teacher_prediction": card["prediction"],
                         "lineage": card.get("distillation", {}).get("lineage", []) + [cfg.teacher]},
        "train": asdict(cfg),
        "data": {"spec": cfg.dataset},
    }


def distill(cfg: DistillConfig, out: Path, resume: bool = False, command: str = "") -> dict:
    """One round of progressive distillation with helpers.training.loop.fit; returns the student's final card."""
    accelerator = make_accelerator(cfg)
    resuming = check_out(out, resume)
    teacher, card = load_teacher(cfg.teacher, accelerator.device)
    T = teacher.alpha_bar.shape[0]
    if cfg.convert and cfg.ratio != 2:
        raise ValueError("--ratio and --convert exclude each other: --convert keeps the teacher's grid (one teacher step "
                         "per student step)")
    if not cfg.convert and cfg.ratio < 2:
        raise ValueError(f"--ratio {cfg.ratio}: expected at least 2 teacher steps per student step (--convert is the "
                         "round with one)")
    if not cfg.convert:
        check_nested(T, cfg.teacher_steps, cfg.ratio)
    if cfg.prediction not in PREDICTIONS or cfg.weighting not in WEIGHTINGS:
        raise ValueError(f"--prediction must be one of {PREDICTIONS} and --weighting one of {WEIGHTINGS}; got "
                         f"{cfg.prediction!r} and {cfg.weighting!r}")
    if cfg.convert and cfg.prediction == card["prediction"]:
        raise ValueError(f"--convert turns the teacher's {card['prediction']} output into another one; with --prediction "
                         f"{cfg.prediction} there is nothing to convert")
    data = load_images(cfg.dataset)
    if tuple(data.shape) != tuple(teacher.sample_shape):
        raise ValueError(f"{cfg.dataset} has {list(data.shape)} images but the teacher makes {list(teacher.sample_shape)}")
    torch.manual_seed(cfg.seed)
    student = build_model(card)  # the teacher's architecture, initialised from its (EMA) weights
    student.load_state_dict(teacher.net.state_dict())
    info = describe(card, cfg, count_parameters(student))
    if resuming and ckpt.read_card(out)["model"] != card["model"]:
        raise ValueError(f"the teacher's network differs from the student's in {out}")
    channels_last = cfg.channels_last and len(data.shape) == 3
    evaluate = None
    if cfg.eval_every:
        evaluate, info["heldout"] = heldout_check(teacher, cfg, accelerator.device)
    return fit(student, distill_objective(teacher, data, cfg), cfg, out, lambda: info, resume=resume,
               command=command, channels_last=channels_last, accelerator=accelerator, evaluate=evaluate)


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m helpers.distill", description=__doc__.split("\n")[0])
    d = DistillConfig()
    p.add_argument("--out", required=True, type=Path, help="the student's checkpoint folder")
    p.add_argument("--resume", action="store_true", help="continue the round in --out (its options are reused)")
    p.add_argument("--teacher", default=d.teacher, help="the teacher's checkpoint folder")
    p.add_argument("--teacher-steps", type=positive_int, default=None,
                   help="the teacher's grid (default: its own card's sampling steps, e.g. a student's; 128 for a DDPM)")
    p.add_argument("--convert", action="store_true", help="round 0: eps -> v on the teacher's grid, no halving")
    p.add_argument("--ratio", type=positive_int, default=d.ratio,
                   help="teacher steps per student step (2 halves; 4 takes the teacher's 128 steps to 32 in one round)")
    p.add_argument("--dataset", default=d.dataset)
    p.add_argument("--prediction", choices=PREDICTIONS, default=d.prediction,
                   help="the student's output: v (Salimans & Ho), or eps (the teacher's, so the student starts as it)")
    p.add_argument("--weighting", choices=WEIGHTINGS, default=d.weighting,
                   help="snr+1: the paper's ||v_tilde - v_hat||^2; step: the squared error of the student's one step in z")
    types = {"steps": positive_int, "batch_size": positive_int, "checkpoint_every": positive_int,
             "log_every": positive_int, "warmup": non_negative_int, "seed": non_negative_int,
             "keep_every": non_negative_int, "lr": positive_float, "weight_decay": non_negative_float,
             "grad_clip": non_negative_float, "ema_decay": unit_float, "ema_power": positive_float,
             "eval_every": non_negative_int, "patience": positive_int, "min_delta": non_negative_float,
             "cooldown": non_negative_float, "heldout": positive_int}
    for name, kind in types.items():
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=getattr(d, name))
    return p


def config_from_args(args, given: dict | None = None) -> DistillConfig:
    if args.resume:
        saved = ckpt.read_card(args.out)["train"] if ckpt.has_checkpoint(args.out) else {}
        given = given or {}
        check_resume(args.out, True, given, saved)
        return DistillConfig(**{**saved, **({"steps": args.steps} if "steps" in given else {})})  # the run's own plan
    teacher_steps = args.teacher_steps
    if teacher_steps is None:
        teacher_steps = ckpt.read_card(args.teacher).get("sampling", {}).get("steps", 128)
    fields = DistillConfig.__dataclass_fields__
    return DistillConfig(**{**{k: v for k, v in vars(args).items() if k in fields}, "teacher_steps": teacher_steps})


def finished(out, steps: int) -> bool:
    """True when the run in `out` reached its plan (its stopping rule's planned_steps, else `steps`): a resumed chain
    skips it, needing only the EMA and card that a finished round commits, not its model and optimizer state."""
    card = ckpt.read_card(out)
    return card["step"] >= card.get("planned_steps", steps)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    command = "python -m helpers.distill " + " ".join(shlex.quote(a) for a in argv)
    try:
        cfg = config_from_args(args, given_options(build_parser(), argv))
        if args.resume and finished(args.out, cfg.steps):
            print(f"{args.out}: finished at step {ckpt.read_card(args.out)['step']} (its card says so); nothing to resume")
            return 0
        card = distill(cfg, args.out, resume=args.resume, command=command)
    except (ValueError, OSError, ckpt.CheckpointError, DataUnavailableError) as err:
        return user_error(err)
    except KeyboardInterrupt as err:
        return after_interrupt(err, getattr(args, "steps", None))
    if card:
        print(f"{card['distillation']['student_steps']}-step student: step {card['step']}, loss {card['final_loss']:.4g}, "
              f"wall time {card['wall_time_s']:.0f} s -> {args.out}")
    return run_status(card, card.get("planned_steps", cfg.steps) if card else cfg.steps)


if __name__ == "__main__":
    sys.exit(main())
