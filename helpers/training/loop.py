"""One resumable training loop for every model (the DDPM, tabular and distillation objectives plug into `fit`):

    fit(model, objective, cfg, out, describe=..., resume=False, command="...")

`fit` owns the optimiser (AdamW), the learning-rate schedule, the EMA (diffusers' `EMAModel` with warm-up), gradient
clipping, Accelerate (device, processes, mixed precision), checkpoints every cfg.checkpoint_every steps and at the end
(helpers.checkpoints: weights, EMA, optimiser, model card), snapshots every cfg.keep_every steps, exact resume,
SIGTERM and Ctrl-C (save, then stop), and its progress for the notebook runner (helpers.progress).

An objective is a function `objective(model, step, ctx) -> loss` (a scalar tensor) or `-> (loss, [parts])`, where
the parts are scalar tensors logged beside the loss (the tabular model's Gaussian and multinomial terms). It must
draw everything random for step k from `step_generator(cfg.seed, k)` (and the data order from `BatchOrder`), so that
the batch of step k depends on (seed, k) alone: then a run killed and resumed ends with the weights of an
uninterrupted one. With several processes each takes its slice of the global batch (`ctx.local`).

`cfg` is the caller's config, a dataclass extending `LoopConfig` (the fields the loop reads); the card holds
`vars(cfg)`.
"""
from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from helpers import checkpoints as ckpt
from helpers.models import count_parameters
from helpers.progress import Progress


@dataclass
class LoopConfig:
    """What `fit` reads. Every trainer's config extends it with its own fields and its own defaults."""

    steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-3
    warmup: int = 100
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999  # the cap; with warm-up the k-th update uses min(cap, 1 - k^-ema_power)
    ema_power: float = 0.75
    seed: int = 0
    checkpoint_every: int = 250
    keep_every: int = 0  # also keep the raw and EMA weights of every keep_every-th step in out/snapshots/ (0: never)
    log_every: int = 50
    mixed_precision: str = "no"
    # The stopping rule (on when fit gets an `evaluate` and eval_every > 0): every eval_every steps the EMA model's
    # held-out error; once `patience` evaluations in a row fail to improve on the best before them by min_delta
    # (relative), or at `steps`, the learning rate decays linearly to 0 over a further cooldown x (steps so far).
    eval_every: int = 0
    patience: int = 3
    min_delta: float = 0.02
    cooldown: float = 0.25


@dataclass
class RunState:
    step: int = 0
    wall_time: float = 0.0
    losses: list = field(default_factory=list)  # [step, mean loss (, mean part, ...)] every log_every steps
    window: list = field(default_factory=list)  # losses since the last log entry (kept across a resume)
    evals: list = field(default_factory=list)  # [step, held-out error] of the stopping rule (see `plateaued`)
    decay_start: int | None = None  # the step where the stopping rule began the learning-rate cool-down

    @classmethod
    def from_card(cls, card: dict) -> "RunState":
        return cls(step=card["step"], wall_time=card["wall_time_s"], losses=card["loss_history"],
                   window=card.get("loss_window", []), evals=card.get("heldout_history", []),
                   decay_start=card.get("decay_start"))

    def final_loss(self) -> float | None:
        """The mean of the last two logged losses (or of the steps since the last log)."""
        recent = [row[1] for row in self.losses[-2:]] or [w[0] if isinstance(w, list) else w for w in self.window]
        return sum(recent) / len(recent) if recent else None


class BatchOrder:
    """Indices of global batch k: positions k*B .. (k+1)*B-1 of the endless sequence of per-epoch permutations
    (epoch e shuffled by seed + e), so the data order never depends on where a run was resumed."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self._perms: dict[int, torch.Tensor] = {}

    def perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            self._perms = {epoch: torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + epoch))}
        return self._perms[epoch]

    def __call__(self, k: int) -> torch.Tensor:
        pos = torch.arange(k * self.batch_size, (k + 1) * self.batch_size)
        epochs = pos // self.n
        return torch.cat([self.perm(int(e))[pos[epochs == e] % self.n] for e in torch.unique(epochs)])


def step_generator(seed: int, step: int) -> torch.Generator:
    """The generator of global batch `step` (its t, noise, label dropout...), seeded by (seed, step) alone: the same
    on every process, whatever the number of processes or where a run resumed."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 64)


def lr_at(step: int, cfg, decay_start: int | None = None) -> float:
    """Linear warm-up to cfg.lr, then constant (so that a run can be extended with --resume); with the stopping rule,
    from `decay_start` on a linear decay to 0 over cooldown_steps(decay_start, cfg) steps."""
    lr = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup))
    if decay_start is None:
        return lr
    # the cool-down's D updates, steps decay_start .. decay_start + D - 1, at lr (D - j) / (D + 1), j = 0 .. D - 1
    return lr * max(0.0, 1.0 - (step - decay_start + 1) / (cooldown_steps(decay_start, cfg) + 1))


def cooldown_steps(decay_start: int, cfg) -> int:
    return max(1, round(cfg.cooldown * decay_start))


def plateaued(values: list[float], patience: int, min_delta: float) -> bool:
    """The stopping rule: the last `patience` held-out errors all fail to improve on the best before them by a
    relative min_delta (warm-start-stable-decay: the constant phase ends here, then the cool-down)."""
    if len(values) <= patience:
        return False
    best_before = min(values[:-patience])
    return min(values[-patience:]) > best_before * (1.0 - min_delta)


class NonFiniteLoss(ValueError):
    """Training stopped at a non-finite loss; the last good checkpoint is kept."""


def make_accelerator(cfg):
    """Accelerate's Accelerator; cpu=True without CUDA (`accelerate launch --num_processes N` runs N CPU processes)."""
    from accelerate import Accelerator

    precision = getattr(cfg, "mixed_precision", "no")
    if precision == "fp16" and not torch.cuda.is_available():
        raise ValueError("--mixed-precision fp16 needs a CUDA device; on the CPU use --mixed-precision bf16 or no")
    return Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=precision)


def check_out(out: Path, resume: bool) -> bool:
    """Whether `out` holds a run to resume; refuses a checkpoint there unless resuming, and a file or a path under one."""
    for parent in [Path(out), *Path(out).parents]:
        if parent.exists() and not parent.is_dir():
            where = "is a file" if parent == Path(out) else f"is under the file {parent}"
            raise ValueError(f"--out {out} {where}; give a folder for the checkpoint")
    if Path(out).is_dir():
        ckpt.recover(out)  # a run killed in the middle of a save: complete or discard that save
    if ckpt.has_checkpoint(out):
        if not resume:
            raise ValueError(f"{out} already holds a checkpoint; pass --resume to continue it or choose another --out")
        return True
    if not resume and not Path(out).exists():  # an --out that cannot be written fails now, not after training
        Path(out).mkdir(parents=True)
        Path(out).rmdir()  # the run makes it again when it saves; a run refused before then leaves nothing
    return False


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during fit(): the run saved its state first (`card`); the command says so and exits with 143."""
    def __init__(self, card: dict):
        super().__init__("interrupted after saving")
        self.card = card


@dataclass
class Context:
    """What an objective needs to know about where it runs."""

    accelerator: object
    channels_last: bool

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    def local(self, tensor: torch.Tensor) -> torch.Tensor:
        """This process's slice of a global-batch tensor, on its device."""
        acc = self.accelerator
        return tensor.chunk(acc.num_processes)[acc.process_index].to(acc.device)


def load_training_state(out: Path, card: dict, model, optimizer, ema) -> None:
    """Weights, EMA weights and optimiser state of the checkpoint in `out` (whose card is `card`), in place."""
    model.load_state_dict(ckpt.read_tensors(out / ckpt.MODEL))
    ema_tensors = ckpt.read_tensors(out / ckpt.EMA)
    ema.shadow_params = [ema_tensors[n].clone() for n, _ in model.named_parameters()]
    ema.optimization_step = card["ema"]["optimization_step"]
    ckpt.load_optimizer_state(optimizer, ckpt.read_tensors(out / ckpt.OPTIMIZER), card["optimizer"])


class Run:
    """The state of one training run: model, optimiser, EMA and RunState, with a step and a save."""

    def __init__(self, model, objective: Callable, cfg, out: Path, describe: Callable[[], dict], resume: bool,
                 command: str, channels_last: bool, on_save: Callable | None, accelerator):
        from diffusers.training_utils import EMAModel

        self.cfg, self.out, self.objective, self.describe, self.on_save = cfg, Path(out), objective, describe, on_save
        self.acc = accelerator or make_accelerator(cfg)
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.ema = EMAModel(model.parameters(), decay=cfg.ema_decay, use_ema_warmup=True, power=cfg.ema_power)
        self.state, self.command, self.resumed = RunState(), command, []
        self.evaluate, self.saved_step = None, 0
        if check_out(self.out, resume):
            previous = ckpt.read_card(self.out)
            load_training_state(self.out, previous, model, self.optimizer, self.ema)
            self.state = RunState.from_card(previous)
            self.command, self.resumed = previous["command"], previous.get("resumed_with", []) + [command]
            self.saved_step = self.state.step
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model, self.optimizer = self.acc.prepare(model, self.optimizer)
        if self.acc.is_main_process:
            print(f"{self.acc.num_processes} process(es) on {self.acc.device}, {count_parameters(model)} parameters",
                  flush=True)
        self.ema.to(self.acc.device)
        self.ctx = Context(self.acc, channels_last)

    def step(self) -> list[float] | None:
        """One optimisation step; returns the means of the parts when the step closes a log window."""
        cfg, acc, state = self.cfg, self.acc, self.state
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(state.step, cfg, state.decay_start)
        out = self.objective(self.model, state.step, self.ctx)
        loss, parts = out if isinstance(out, tuple) else (out, None)
        if not torch.isfinite(loss.detach()).all():
            kept = (f"keeping the last good checkpoint in {self.out} (step {self.saved_step})" if self.saved_step
                    else "nothing was saved")
            raise NonFiniteLoss(f"the loss is {loss.item()} at step {state.step + 1}; stopped, {kept}; lower --lr or "
                                "check the data")
        self.optimizer.zero_grad(set_to_none=True)
        acc.backward(loss)
        if cfg.grad_clip:
            acc.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self.ema.step(acc.unwrap_model(self.model).parameters())
        state.step += 1
        value = acc.gather(loss.detach()[None]).mean().item()
        state.window.append(value if parts is None else [value, *(p.item() for p in parts)])
        if state.step % cfg.log_every:
            return None
        if parts is None:
            means = [sum(state.window) / len(state.window)]
        else:
            means = np.mean(state.window, axis=0).tolist()
        state.losses.append([state.step, *means])
        state.window = []
        return means

    def save(self, snapshot: bool = False) -> None:
        if self.acc.is_main_process:
            raw = self.acc.unwrap_model(self.model)
            ema_state = dict(zip([n for n, _ in raw.named_parameters()], self.ema.shadow_params))
            if snapshot:
                ckpt.save_snapshot(self.out, self.state.step, raw, ema_state, wall_time=self.state.wall_time)
            if self.on_save is not None:
                self.on_save(self.out)
            s, ema = self.state, self.ema
            card = {**self.describe(), "step": s.step, "wall_time_s": round(s.wall_time, 1),
                    "final_loss": s.final_loss(), "loss_history": s.losses, "loss_window": s.window,
                    "command": self.command, "resumed_with": self.resumed,
                    "ema": {"optimization_step": ema.optimization_step, "decay_now": ema.get_decay(ema.optimization_step)}}
            if self.evaluate is not None:
                card |= {"heldout_history": s.evals, "decay_start": s.decay_start, "planned_steps": self.total_steps()}
            optimizer = getattr(self.optimizer, "optimizer", self.optimizer)
            ckpt.save_checkpoint(self.out, raw, ema_state, card, optimizer=optimizer)
            self.saved_step = self.state.step
        self.acc.wait_for_everyone()

    def heldout(self) -> float:
        """The held-out error of the EMA weights (what a checkpoint ships), logged in the state."""
        raw = self.acc.unwrap_model(self.model)
        self.ema.store(raw.parameters())
        self.ema.copy_to(raw.parameters())
        raw.eval()
        value = self.evaluate(raw)
        self.ema.restore(raw.parameters())
        raw.train()
        self.state.evals.append([self.state.step, value])
        return value

    def total_steps(self) -> int:
        """cfg.steps, or with the stopping rule the end of its cool-down (cfg.steps caps the constant phase)."""
        s = self.state
        if self.evaluate is None:
            return self.cfg.steps
        start = s.decay_start if s.decay_start is not None else self.cfg.steps
        return start + cooldown_steps(start, self.cfg)

    def after_step(self) -> None:
        """The stopping rule: evaluate every cfg.eval_every steps; at a plateau (or cfg.steps) start the cool-down."""
        s, cfg = self.state, self.cfg
        if self.evaluate is None:
            return
        at_cap = s.decay_start is None and s.step >= cfg.steps  # cfg.steps caps the constant phase exactly
        if s.step % cfg.eval_every and s.step != self.total_steps() and not at_cap:
            return
        self.heldout()
        if s.decay_start is None and (at_cap or plateaued([v for _, v in s.evals], cfg.patience, cfg.min_delta)):
            s.decay_start = s.step


def fit(model, objective: Callable, cfg, out: str | Path, describe: Callable[[], dict], resume: bool = False,
        command: str = "", channels_last: bool = False, on_save: Callable | None = None, accelerator=None,
        progress: bool = True, part_names: tuple[str, ...] = (), evaluate: Callable | None = None) -> dict:
    """Train `model` on `objective` to cfg.steps, checkpointing to `out`; with `resume` continue the checkpoint there
    exactly. `describe()` gives the card's static part; `on_save(out)` writes extra files before each card. With `evaluate(net) -> float` and
    cfg.eval_every > 0 the run stops by the rule of `Run.after_step` instead of at cfg.steps. Returns the final
    card (an empty dict on processes other than the main one)."""
    from tqdm.auto import tqdm

    run = Run(model, objective, cfg, Path(out), describe, resume, command, channels_last, on_save, accelerator)
    if evaluate is not None and getattr(cfg, "eval_every", 0):
        run.evaluate = evaluate
        if not run.state.evals:
            run.heldout()  # step 0: the student before training
    stop = {"now": False, "by": None}
    handler = lambda signum, _frame: stop.update(now=True, by=signal.Signals(signum).name)  # noqa: E731
    old_handler = signal.signal(signal.SIGTERM, handler)  # save, then stop; Ctrl-C (SIGINT) the same
    old_interrupt = signal.signal(signal.SIGINT, handler)
    try:
        bar = tqdm(total=run.total_steps(), initial=run.state.step, desc="train",
                   disable=not (progress and run.acc.is_main_process))
        shown = Progress(f"training {Path(out).name}", run.total_steps(), done=run.state.step)  # for `make run`
        t_start, start_step = time.time() - run.state.wall_time, run.state.step
        run.model.train()
        keep_every = getattr(cfg, "keep_every", 0)
        while run.state.step < run.total_steps() and not stop["now"]:
            try:
                means = run.step()
            except NonFiniteLoss:
                bar.close()
                raise
            run.after_step()
            bar.total = shown.total = run.total_steps()
            bar.update(1)
            shown.advance()
            if means is not None:
                bar.set_postfix(dict(zip(("loss", *part_names), (f"{m:.4g}" for m in means))))
            run.state.wall_time = time.time() - t_start
            step = run.state.step
            keep = bool(keep_every) and step % keep_every == 0
            if (step % cfg.checkpoint_every == 0 and step < run.total_steps()) or keep:
                run.save(snapshot=keep)
        bar.close()
        if run.state.step > start_step:  # a resumed run that was already finished is left as it was
            run.save()
    finally:
        signal.signal(signal.SIGTERM, old_handler)
        signal.signal(signal.SIGINT, old_interrupt)
    if not run.acc.is_main_process:
        return {}
    card = ckpt.read_card(run.out)
    if stop["by"] == "SIGINT":  # saved; the interrupt goes on to the caller (a notebook stops here too)
        raise Interrupted(card)
    return {**card, "stopped_by": stop["by"]} if stop["by"] else card
