"""A diffusion transformer (DiT; Peebles & Xie, ICCV 2023), written from scratch for the course.

The input (an image, or an autoencoder's latent) is cut into p x p patches, each linearly embedded into a token with a
fixed 2-D sine-cosine position embedding; transformer blocks process the tokens; a final layer maps each token back
to a p x p patch of the output (eps, v or x0, as the training objective decides). The timestep and the class label
(with a reserved null label for classifier-free guidance, as in the U-Net) condition the blocks in one of four ways,
the variants of the paper's Figure 3:

    adaln-zero       adaptive layer norm: shift, scale and a residual gate per block regressed from emb = t + y,
                     the regressing layer and the output layer zero-initialised, so each block starts as the identity
    adaln            shift and scale only, ordinary initialisation (no gates)
    in-context       t and y appended as two extra tokens to the sequence; plain transformer blocks
    cross-attention  the blocks attend to the two-token sequence [t, y] after self-attention

A text-conditioned DiT (notebook 11; `text` set to a text encoder's config, no classes) takes token ids [N, L] as its
condition: a frozen text encoder (helpers/models/text_encoder.py, trained by helpers.training.clip) turns them into
token vectors; the <eos> token's vector joins t in adaLN-Zero's input, and every block cross-attends to all tokens
after its self-attention (as PixArt-alpha does), the cross-attention's output layer zero-initialised so that the
blocks still start as the identity. Its null condition for CFG is the empty caption.

Only adaln-zero has a diffusers twin (`DiTTransformer2DModel`); `to_diffusers` converts its weights so that the
two can be compared on the same input (tests/test_dit.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from helpers.models.layers import NetConfig, class_labels, timestep_embedding

CONDITIONINGS = ("adaln-zero", "adaln", "in-context", "cross-attention")
FREQ_DIM = 256  # the sinusoidal timestep features fed to the time MLP, as in the paper's code


@dataclass
class DiTConfig(NetConfig):
    """Hyper-parameters of :class:`DiT`; stored in the model card. `image_size` and `in_channels` are those of what
    the DiT denoises (an autoencoder's latent in notebook 10)."""

    in_channels: int = 4
    image_size: int = 7
    patch_size: int = 1
    hidden_size: int = 192
    depth: int = 6
    num_heads: int = 4
    mlp_ratio: float = 4.0
    num_classes: int | None = 10  # None: unconditional; otherwise label `num_classes` is the null label
    conditioning: str = "adaln-zero"
    text: dict | None = None  # a text encoder's config (TextEncoderConfig fields): condition on captions

    def __post_init__(self):
        if self.conditioning not in CONDITIONINGS:
            raise ValueError(f"conditioning must be one of {', '.join(CONDITIONINGS)}, got {self.conditioning!r}")
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not divisible by patch_size {self.patch_size}")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if self.hidden_size % 4:
            raise ValueError(f"hidden_size must be divisible by 4 (the 2-D position embedding), got {self.hidden_size}")
        if self.text is not None and (self.num_classes is not None or self.conditioning != "adaln-zero"):
            raise ValueError("a text-conditioned DiT has no classes (num_classes=None) and uses adaln-zero "
                             f"(got num_classes={self.num_classes}, conditioning={self.conditioning!r})")
        for name in ("in_channels", "image_size", "patch_size", "depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        return (self.in_channels, self.image_size, self.image_size)


def sincos_1d(dim: int, pos: torch.Tensor) -> torch.Tensor:
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))
    out = pos.double()[:, None] * omega[None]
    return torch.cat([torch.sin(out), torch.cos(out)], dim=1)


def pos_embed_2d(dim: int, grid: int) -> torch.Tensor:
    """[grid**2, dim] fixed position embedding of a grid x grid of tokens in row-major order: the first half encodes
    the column, the second the row (the paper's code, from MAE)."""
    row, col = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    return torch.cat([sincos_1d(dim // 2, col.flatten()), sincos_1d(dim // 2, row.flatten())], dim=1).float()


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """[N, C, H, W] -> [N, (H/p)(W/p), p*p*C], patches in row-major order, each flattened as (p, p, C)."""
    n, c, h, w = x.shape
    x = x.reshape(n, c, h // p, p, w // p, p)
    return torch.einsum("nchpwq->nhwpqc", x).reshape(n, (h // p) * (w // p), p * p * c)


def unpatchify(tokens: torch.Tensor, p: int, c: int) -> torch.Tensor:
    """The inverse of patchify for a square image."""
    n, length, _ = tokens.shape
    g = math.isqrt(length)
    x = tokens.reshape(n, g, g, p, p, c)
    return torch.einsum("nhwpqc->nchpwq", x).reshape(n, c, g * p, g * p)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class Attention(nn.Module):
    """Multi-head attention of x to itself, or to a context (cross-attention)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        """mask [N, L_context] bool: which context tokens to attend to (None: all)."""
        context = x if context is None else context
        split = lambda z: z.reshape(z.shape[0], z.shape[1], self.heads, -1).transpose(1, 2)  # (N, heads, L, d)
        h = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(context)), split(self.v(context)),
                                           attn_mask=None if mask is None else mask[:, None, None, :])
        return self.out(h.transpose(1, 2).reshape(x.shape))


class Block(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        d, self.kind = cfg.hidden_size, cfg.conditioning
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(d, cfg.num_heads)
        self.norm2 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        hidden = int(d * cfg.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, d))
        if self.kind in ("adaln-zero", "adaln"):
            chunks = 6 if self.kind == "adaln-zero" else 4
            self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, chunks * d))
            if self.kind == "adaln-zero":  # every block starts as the identity: all gates are 0
                nn.init.zeros_(self.modulation[1].weight)
                nn.init.zeros_(self.modulation[1].bias)
        if self.kind == "cross-attention" or cfg.text is not None:
            self.norm_cross = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
            self.cross = Attention(d, cfg.num_heads)
        self.text = cfg.text is not None
        if self.text:  # the text cross-attention starts switched off, keeping adaLN-Zero's identity at initialisation
            nn.init.zeros_(self.cross.out.weight)
            nn.init.zeros_(self.cross.out.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.kind == "adaln-zero":
            shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(emb).chunk(6, dim=1)
            x = x + gate1[:, None] * self.attn(modulate(self.norm1(x), shift1, scale1))
            if self.text:
                x = x + self.cross(self.norm_cross(x), context, mask)
            return x + gate2[:, None] * self.mlp(modulate(self.norm2(x), shift2, scale2))
        if self.kind == "adaln":
            shift1, scale1, shift2, scale2 = self.modulation(emb).chunk(4, dim=1)
            x = x + self.attn(modulate(self.norm1(x), shift1, scale1))
            return x + self.mlp(modulate(self.norm2(x), shift2, scale2))
        x = x + self.attn(self.norm1(x))
        if self.kind == "cross-attention":
            x = x + self.cross(self.norm_cross(x), context)
        return x + self.mlp(self.norm2(x))


class DiT(nn.Module):
    """eps_theta(z_t, t[, y]): an [N x C x S x S] input and [N] timesteps (and [N] labels; none or the null label
    give the unconditional prediction) to an [N x C x S x S] output."""

    def __init__(self, config: DiTConfig):
        super().__init__()
        self.config = cfg = config
        d, p = cfg.hidden_size, cfg.patch_size
        self.patch = nn.Conv2d(cfg.in_channels, d, kernel_size=p, stride=p)
        self.register_buffer("pos", pos_embed_2d(d, cfg.image_size // p), persistent=False)
        self.time_mlp = nn.Sequential(nn.Linear(FREQ_DIM, d), nn.SiLU(), nn.Linear(d, d))
        self.label_emb = nn.Embedding(cfg.num_classes + 1, d) if cfg.num_classes else None
        self.text = None
        if cfg.text is not None:  # a frozen text encoder, and the maps from its width to the DiT's
            from helpers.models.text_encoder import TextEncoder, TextEncoderConfig

            self.text = TextEncoder(TextEncoderConfig(**cfg.text)).requires_grad_(False)
            self.text_context = nn.Linear(self.text.config.width, d)
            self.text_pooled = nn.Linear(self.text.config.width, d)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm_out = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        if cfg.conditioning in ("adaln-zero", "adaln"):
            self.modulation_out = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))
            if cfg.conditioning == "adaln-zero":
                nn.init.zeros_(self.modulation_out[1].weight)
                nn.init.zeros_(self.modulation_out[1].bias)
        self.out = nn.Linear(d, p * p * cfg.in_channels)
        nn.init.zeros_(self.out.weight)  # the network starts by predicting 0, for every variant
        nn.init.zeros_(self.out.bias)
        # The paper's initialisation of the rest: Xavier-uniform linear layers, the patch embedding like a linear
        # layer, N(0, 0.02) for the label and time embeddings.
        for m in self.modules():
            if isinstance(m, nn.Linear) and m.weight.abs().sum() > 0 and not any(m is t for t in self.text_modules()):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.xavier_uniform_(self.patch.weight.view(d, -1))
        nn.init.zeros_(self.patch.bias)
        if self.label_emb is not None:
            nn.init.normal_(self.label_emb.weight, std=0.02)
        for layer in (self.time_mlp[0], self.time_mlp[2]):
            nn.init.normal_(layer.weight, std=0.02)

    def text_modules(self) -> list[nn.Module]:
        return [] if self.text is None else list(self.text.modules())

    def null_condition(self, y: torch.Tensor) -> torch.Tensor:
        """The condition of CFG's unconditional branch for a batch conditioned on y: the null label, or the empty
        caption's token ids for a text-conditioned DiT."""
        if self.text is not None:
            return self.text.empty(len(y), y.device)
        return torch.full_like(y, self.config.num_classes)

    def embed_text(self, t_emb: torch.Tensor, ids: torch.Tensor | None):
        ids = self.text.empty(len(t_emb), t_emb.device) if ids is None else ids
        if ids.ndim != 2 or ids.dtype != torch.long:
            raise ValueError(f"a text-conditioned DiT takes token ids [N, {self.text.config.max_length}] as its condition "
                             f"(helpers.datasets.captions.Tokenizer), got {list(ids.shape)} {ids.dtype}")
        tokens, _ = self.text(ids)
        eos = (ids == self.text.config.eos_id).int().argmax(1)
        pooled = tokens[torch.arange(len(ids), device=ids.device), eos]
        return t_emb + self.text_pooled(pooled), self.text_context(tokens), ids != self.text.config.pad_id

    def embed(self, t: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """emb = t_emb + y_emb (the adaLN input), and the conditioning tokens [t_emb, y_emb] (in-context, cross)."""
        t_emb = self.time_mlp(timestep_embedding(t, FREQ_DIM))
        y = class_labels(y, self.config.num_classes, t, "DiT")
        if y is None:
            return t_emb, t_emb[:, None]
        y_emb = self.label_emb(y)
        return t_emb + y_emb, torch.stack([t_emb, y_emb], dim=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        cfg = self.config
        if x.ndim != 4 or tuple(x.shape[1:]) != cfg.sample_shape:
            raise ValueError(f"expected input of shape [N, {', '.join(map(str, cfg.sample_shape))}], got {list(x.shape)}")
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        mask = None
        if self.text is not None:
            emb, tokens, mask = self.embed_text(self.time_mlp(timestep_embedding(t, FREQ_DIM)), y)
        else:
            emb, tokens = self.embed(t, y)
        h = self.patch(x).flatten(2).transpose(1, 2) + self.pos  # (N, L, d)
        if cfg.conditioning == "in-context":
            h = torch.cat([h, tokens], dim=1)
        for block in self.blocks:
            h = block(h, emb, tokens, mask)
        h = self.norm_out(h[:, : cfg.num_patches])
        if cfg.conditioning in ("adaln-zero", "adaln"):
            shift, scale = self.modulation_out(emb).chunk(2, dim=1)
            h = modulate(h, shift, scale)
        return unpatchify(self.out(h), cfg.patch_size, cfg.in_channels)


def to_diffusers(model: DiT):
    """The same network as diffusers' `DiTTransformer2DModel`, with the same weights (adaln-zero only). diffusers keeps
    one copy of the timestep and label embedders per block; each gets ours."""
    from diffusers import DiTTransformer2DModel

    cfg = model.config
    if cfg.conditioning != "adaln-zero" or cfg.num_classes is None:
        raise ValueError("only a class-conditional adaln-zero DiT has a diffusers twin (DiTTransformer2DModel)")
    d = cfg.hidden_size
    twin = DiTTransformer2DModel(num_attention_heads=cfg.num_heads, attention_head_dim=d // cfg.num_heads,
                                 in_channels=cfg.in_channels, out_channels=cfg.in_channels, num_layers=cfg.depth,
                                 sample_size=cfg.image_size, patch_size=cfg.patch_size, num_embeds_ada_norm=cfg.num_classes,
                                 norm_eps=1e-6)
    if int(d * cfg.mlp_ratio) != 4 * d:
        raise ValueError("diffusers' DiT has mlp_ratio 4")
    ours = model.state_dict()
    sd = {"pos_embed.proj.weight": ours["patch.weight"], "pos_embed.proj.bias": ours["patch.bias"],
          "proj_out_1.weight": ours["modulation_out.1.weight"], "proj_out_1.bias": ours["modulation_out.1.bias"],
          "proj_out_2.weight": ours["out.weight"], "proj_out_2.bias": ours["out.bias"]}
    for i in range(cfg.depth):
        b, o = f"transformer_blocks.{i}.", f"blocks.{i}."
        emb = b + "norm1.emb."
        sd |= {emb + "timestep_embedder.linear_1.weight": ours["time_mlp.0.weight"], emb + "timestep_embedder.linear_1.bias": ours["time_mlp.0.bias"],
               emb + "timestep_embedder.linear_2.weight": ours["time_mlp.2.weight"], emb + "timestep_embedder.linear_2.bias": ours["time_mlp.2.bias"],
               emb + "class_embedder.embedding_table.weight": ours["label_emb.weight"],
               b + "norm1.linear.weight": ours[o + "modulation.1.weight"], b + "norm1.linear.bias": ours[o + "modulation.1.bias"],
               b + "ff.net.0.proj.weight": ours[o + "mlp.0.weight"], b + "ff.net.0.proj.bias": ours[o + "mlp.0.bias"],
               b + "ff.net.2.weight": ours[o + "mlp.2.weight"], b + "ff.net.2.bias": ours[o + "mlp.2.bias"]}
        for ours_name, theirs in (("q", "to_q"), ("k", "to_k"), ("v", "to_v"), ("out", "to_out.0")):
            sd[f"{b}attn1.{theirs}.weight"] = ours[f"{o}attn.{ours_name}.weight"]
            sd[f"{b}attn1.{theirs}.bias"] = ours[f"{o}attn.{ours_name}.bias"]
    twin.load_state_dict(sd, strict=True)
    for block in twin.transformer_blocks:  # diffusers' DiT divides the frequencies by half - 1, the paper by half
        block.norm1.emb.time_proj.downscale_freq_shift = 0
    return twin.eval()
