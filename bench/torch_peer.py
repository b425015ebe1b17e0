#!/usr/bin/python3
"""PyTorch / numpy peer for the engine benchmark and the gradient-parity test.

The same architecture as native/cpu (nanochat GPT blocks + Mamba-1 blocks in a block pattern), written
plainly in PyTorch (1.13, CPU). Weights and batches are exchanged as safetensors (F32), parsed here with
numpy so that the `safetensors` package is not needed.

  torch_peer.py grad  DIR             loss + gradients for DIR/{config.json,model.safetensors,batch.safetensors}
                                      -> DIR/grads.safetensors, prints {"loss_sum": ..., "weight_sum": ...}
  torch_peer.py speed DIR STEPS       forward+backward tokens/s on the same batch, prints JSON
  torch_peer.py gemm  SHAPES_JSON     numpy (OpenBLAS) sgemm GFLOP/s for [[M,N,K],...], prints JSON
Threads: NANORAG_PEER_THREADS (default 2).
"""
import json
import math
import os
import struct
import sys
import time

import numpy as np

THREADS = int(os.environ.get("NANORAG_PEER_THREADS", "2"))


def read_st(path):
    with open(path, "rb") as f:
        b = f.read()
    (n,) = struct.unpack("<Q", b[:8])
    h = json.loads(b[8 : 8 + n])
    out = {}
    for k, v in h.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        out[k] = np.frombuffer(b[8 + n + s : 8 + n + e], dtype=np.float32).reshape(v["shape"]).copy()
    return out


def write_st(path, tensors):
    header, off, blobs = {}, 0, []
    for k, a in tensors.items():
        a = np.ascontiguousarray(a, dtype=np.float32)
        header[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
        blobs.append(a.tobytes())
    hj = json.dumps(header).encode()
    hj += b" " * ((8 - (8 + len(hj)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj + b"".join(blobs))


def build(cfg, weights):
    import torch
    import torch.nn.functional as F

    C, H, Hkv = cfg["n_embd"], cfg["n_head"], cfg["n_kv_head"]
    hd = C // H
    eps, cap, base = cfg["norm_eps"], cfg["logit_softcap"], cfg["rope_base"]
    di = cfg["mamba_expand"] * C
    N = cfg["mamba_d_state"]
    R = math.ceil(C / 16) if cfg["mamba_dt_rank"] == "auto" else cfg["mamba_dt_rank"]
    K = cfg["mamba_d_conv"]
    P = {k: torch.tensor(v, requires_grad=True) for k, v in weights.items()}

    def norm(x):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps)

    def rope(x, T):  # x: B,T,h,hd ; split halves, nanochat sign convention
        j = np.arange(hd // 2, dtype=np.float64)
        inv = base ** (-2.0 * j / hd)
        th = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]
        cos = torch.tensor(np.cos(th), dtype=torch.float32)[None, :, None, :]
        sin = torch.tensor(np.sin(th), dtype=torch.float32)[None, :, None, :]
        x1, x2 = x[..., : hd // 2], x[..., hd // 2 :]
        return torch.cat([x1 * cos + x2 * sin, -x1 * sin + x2 * cos], -1)

    def mlp(x, pre):
        h = F.relu(norm(x) @ P[pre + "mlp.c_fc.weight"].t())
        return x + (h * h) @ P[pre + "mlp.c_proj.weight"].t()

    def attn(x, pre):
        B, T, _ = x.shape
        xn = norm(x)
        q = (xn @ P[pre + "attn.c_q.weight"].t()).view(B, T, H, hd)
        k = (xn @ P[pre + "attn.c_k.weight"].t()).view(B, T, Hkv, hd)
        v = (xn @ P[pre + "attn.c_v.weight"].t()).view(B, T, Hkv, hd)
        q, k = norm(rope(q, T)), norm(rope(k, T))
        g = H // Hkv
        k, v = k.repeat_interleave(g, dim=2), v.repeat_interleave(g, dim=2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        s = s.masked_fill(mask, float("-inf"))
        o = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, H * hd)
        return x + o @ P[pre + "attn.c_proj.weight"].t()

    def mamba(x, pre):
        B, T, _ = x.shape
        xz = norm(x) @ P[pre + "mixer.in_proj.weight"].t()
        xx, z = xz[..., :di], xz[..., di:]
        p = F.conv1d(xx.transpose(1, 2), P[pre + "mixer.conv1d.weight"], P[pre + "mixer.conv1d.bias"], padding=K - 1, groups=di)
        u = F.silu(p[..., :T].transpose(1, 2))
        xdbl = u @ P[pre + "mixer.x_proj.weight"].t()
        dtl, Bm, Cm = xdbl[..., :R], xdbl[..., R : R + N], xdbl[..., R + N :]
        delta = F.softplus(dtl @ P[pre + "mixer.dt_proj.weight"].t() + P[pre + "mixer.dt_proj.bias"])
        A = -torch.exp(P[pre + "mixer.A_log"])
        h = torch.zeros(B, di, N)
        ys = []
        for t in range(T):
            dt = delta[:, t, :, None]
            h = torch.exp(dt * A) * h + dt * u[:, t, :, None] * Bm[:, t, None, :]
            ys.append((h * Cm[:, t, None, :]).sum(-1))
        y = torch.stack(ys, 1) + u * P[pre + "mixer.D"]
        return x + (y * F.silu(z)) @ P[pre + "mixer.out_proj.weight"].t()

    def loss_fn(tok, tgt, w, scale):
        x = norm(P["transformer.wte.weight"][tok])
        for i, kind in enumerate(cfg["block_pattern"]):
            pre = f"transformer.h.{i}."
            if kind == "T":
                x = mlp(attn(x, pre), pre)
            else:
                x = mamba(x, pre)
                if cfg["mamba_use_mlp"]:
                    x = mlp(x, pre)
        logits = norm(x) @ P["lm_head.weight"].t()
        if cap > 0:
            logits = cap * torch.tanh(logits / cap)
        V = logits.shape[-1]
        valid = tgt >= 0
        ce = F.cross_entropy(logits.reshape(-1, V), tgt.clamp(min=0).reshape(-1), reduction="none")
        wv = (w.reshape(-1) * valid.reshape(-1).float())
        lsum = (wv * ce).sum()
        return lsum, wv.sum(), lsum * scale

    return P, loss_fn


def load(d):
    import torch

    torch.set_num_threads(THREADS)
    cfg = json.load(open(os.path.join(d, "config.json")))["model_config"]
    W = read_st(os.path.join(d, "model.safetensors"))
    bt = read_st(os.path.join(d, "batch.safetensors"))
    tok = torch.tensor(bt["tokens"].astype(np.int64))
    tgt = torch.tensor(bt["targets"].astype(np.int64))
    w = torch.tensor(bt["weights"])
    scale = float(bt["scale"][0])
    P, f = build(cfg, W)
    return P, f, tok, tgt, w, scale


def main():
    mode = sys.argv[1]
    if mode == "gemm":
        shapes = json.loads(sys.argv[2])
        res = []
        for M, N, K in shapes:
            a = np.random.rand(M, K).astype(np.float32)
            b = np.random.rand(K, N).astype(np.float32)
            a @ b
            reps = max(3, int(2e9 / (2.0 * M * N * K)))
            t0 = time.perf_counter()
            for _ in range(reps):
                a @ b
            dt = (time.perf_counter() - t0) / reps
            res.append({"M": M, "N": N, "K": K, "gflops": 2.0 * M * N * K / dt / 1e9})
        print(json.dumps(res))
        return
    d = sys.argv[2]
    P, f, tok, tgt, w, scale = load(d)
    if mode == "grad":
        lsum, wsum, loss = f(tok, tgt, w, scale)
        loss.backward()
        write_st(os.path.join(d, "grads.safetensors"), {k: v.grad.numpy() for k, v in P.items()})
        print(json.dumps({"loss_sum": float(lsum), "weight_sum": float(wsum)}))
    elif mode == "speed":
        steps = int(sys.argv[3])
        f(tok, tgt, w, scale)[2].backward()
        t0 = time.perf_counter()
        for _ in range(steps):
            for v in P.values():
                v.grad = None
            f(tok, tgt, w, scale)[2].backward()
        dt = (time.perf_counter() - t0) / steps
        print(json.dumps({"step_s": dt, "tokens_per_s": tok.numel() / dt, "threads": THREADS}))


if __name__ == "__main__":
    main()
