#!/usr/bin/env python3
"""PyTorch peer for the GPU check (native/gpu-check.sh): the nanorag architecture (nanochat T blocks +
Mamba-1 blocks in a block pattern, as native/cpu and native/cuda) written plainly in PyTorch on CUDA:
bf16 autocast, scaled_dot_product_attention (flash) for attention, and the selective scan as a chunked
log-space scan (16-step chunks, cumulative sums inside a chunk, a Python loop across chunks) in fp32,
each Mamba block under torch.utils.checkpoint so that B=8 x 2048 fits in memory. Optimizer: fused AdamW
for every tensor (Muon is not in torch; the engine's timings include its Muon step).

Timed like native/tests/gpu_check.c: training tokens/s and MFU at d12 and d20, T=2048, for all-T, all-M
and hybrid (8T+12M at d20, 5T+7M at d12), then the scan alone (forward + backward) vs sequence length.
Prints table rows in gpu_check's format.  Usage: torch_peer.py [--budget SECONDS]
"""
import math
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

DEV = "cuda"
V, N, K, EXPAND = 65536, 16, 4, 2


def norm(x, eps=1e-6):
    return x * torch.rsqrt((x.float() * x.float()).mean(-1, keepdim=True) + eps).to(x.dtype)


def scan(u, delta, A, Bm, Cm, D, chunk=16):
    """h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t, y_t = C_t h_t + D u_t; u, delta (b,T,d), A (d,N), B, C (b,T,N)."""
    b, T, d = u.shape
    h = u.new_zeros(b, d, A.shape[1])
    ys = []
    for t0 in range(0, T, chunk):
        dl = delta[:, t0 : t0 + chunk, :, None]
        la = torch.cumsum(dl * A, dim=1)  # log of the cumulative decay within the chunk
        x = dl * Bm[:, t0 : t0 + chunk, None, :] * u[:, t0 : t0 + chunk, :, None]
        hs = torch.exp(la) * (h[:, None] + torch.cumsum(torch.exp(-la) * x, dim=1))
        ys.append((hs * Cm[:, t0 : t0 + chunk, None, :]).sum(-1))
        h = hs[:, -1]
    return torch.cat(ys, 1) + u * D


class Model(torch.nn.Module):
    def __init__(self, C, pattern):
        super().__init__()
        H, di, R = C // 128, EXPAND * C, math.ceil(C / 16)
        self.C, self.H, self.pattern, self.di, self.R = C, H, pattern, di, R
        P = lambda *s: torch.nn.Parameter(torch.randn(*s, device=DEV) * 0.02)
        self.wte, self.lm_head = P(V, C), P(V, C)
        self.blocks = torch.nn.ModuleList()
        for k in pattern:
            m = torch.nn.Module()
            if k == "T":
                m.qkv, m.proj, m.fc, m.fcp = P(3 * C, C), P(C, C), P(4 * C, C), P(C, 4 * C)
            else:
                m.win, m.wout, m.wx, m.wdt = P(2 * di, C), P(C, di), P(R + 2 * N, di), P(di, R)
                m.convw, m.convb = P(di, 1, K), torch.nn.Parameter(torch.zeros(di, device=DEV))
                m.dtb = torch.nn.Parameter(torch.full((di,), math.log(math.expm1(0.01)), device=DEV))
                m.alog = torch.nn.Parameter(torch.log(torch.arange(1, N + 1, device=DEV, dtype=torch.float32)).repeat(di, 1))
                m.D = torch.nn.Parameter(torch.ones(di, device=DEV))
            self.blocks.append(m)
        hd = C // H
        th = torch.arange(8192, device=DEV)[:, None] * (10000.0 ** (-2.0 * torch.arange(hd // 2, device=DEV) / hd))[None]
        self.cos, self.sin = th.cos()[None, :, None, :], th.sin()[None, :, None, :]

    def attn(self, m, x):
        B, T, C = x.shape
        H, hd = self.H, C // self.H
        q, k, v = (norm(x) @ m.qkv.t()).view(B, T, 3, H, hd).unbind(2)
        cos, sin = self.cos[:, :T].to(x.dtype), self.sin[:, :T].to(x.dtype)
        rot = lambda z: torch.cat([z[..., : hd // 2] * cos + z[..., hd // 2 :] * sin, -z[..., : hd // 2] * sin + z[..., hd // 2 :] * cos], -1)
        q, k = norm(rot(q)), norm(rot(k))
        o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        x = x + o.transpose(1, 2).reshape(B, T, C) @ m.proj.t()
        h = F.relu(norm(x) @ m.fc.t())
        return x + (h * h) @ m.fcp.t()

    def mamba(self, m, x):
        B, T, _ = x.shape
        di, R = self.di, self.R
        xz = norm(x) @ m.win.t()
        xx, z = xz[..., :di], xz[..., di:]
        u = F.silu(F.conv1d(xx.transpose(1, 2), m.convw, m.convb, padding=K - 1, groups=di)[..., :T].transpose(1, 2))
        xdbl = u @ m.wx.t()
        dt, Bm, Cm = xdbl[..., :R], xdbl[..., R : R + N], xdbl[..., R + N :]
        delta = F.softplus((dt @ m.wdt.t()).float() + m.dtb)
        with torch.autocast("cuda", enabled=False):
            y = scan(u.float(), delta, -torch.exp(m.alog), Bm.float(), Cm.float(), m.D)
        return x + (y.to(x.dtype) * F.silu(z)) @ m.wout.t()

    def forward(self, tok, tgt):
        x = norm(self.wte[tok])
        for k, m in zip(self.pattern, self.blocks):
            x = self.attn(m, x) if k == "T" else checkpoint(self.mamba, m, x, use_reentrant=False)
        logits = 15 * torch.tanh((norm(x) @ self.lm_head.t()).float() / 15)
        return F.cross_entropy(logits.view(-1, V), tgt.reshape(-1))


def flops_per_token(C, pattern, T):  # src/engine/config.ts flopsPerToken, training
    H, di, R = C // 128, EXPAND * C, math.ceil(C / 16)
    mm, attn = V * C, 0
    for k in pattern:
        if k == "T":
            mm += C * 3 * C + C * C + 8 * C * C
            attn += 2 * C * (T / 2) * 2
        else:
            mm += 2 * di * C + (R + 2 * N) * di + R * di + C * di
    return 3 * (2 * mm + attn)


def peak():
    n = torch.cuda.get_device_name()
    return 756e12 if "PCIe" in n and "H100" in n else 312e12 if "A100" in n else 989e12


def row(what, text):
    print(f"| torch   | {what:<44} | {text}", flush=True)


def bench(depth, kind, B=8, T=2048):
    C = 1280 if depth == 20 else 768
    nT = depth if kind == "all-T" else 0 if kind == "all-M" else (8 if depth == 20 else 5)
    pattern = "T" * nT + "M" * (depth - nT)
    while B >= 1:
        model = opt = None
        torch.cuda.reset_peak_memory_stats()
        try:
            model = Model(C, pattern)
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
            tok = torch.randint(0, V, (B, T + 1), device=DEV)
            times = []
            for i in range(3):  # warm-up + 2 timed
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    loss = model(tok[:, :-1], tok[:, 1:])
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
            tps = B * T / (sum(times[1:]) / 2)
            mfu = tps * flops_per_token(C, pattern, T) / peak()
            row(f"d{depth} {kind} B={B} T={T}", f"{tps:.0f} tokens/s, MFU {100 * mfu:.1f}%, peak mem {torch.cuda.max_memory_allocated() / 1e9:.1f} GB")
            return
        except torch.cuda.OutOfMemoryError:
            model = opt = None
            torch.cuda.empty_cache()
            B //= 2
    row(f"d{depth} {kind} T={T}", "out of memory at B=1")


def bench_scan(T, d=2560):
    u, delta = torch.randn(1, T, d, device=DEV, requires_grad=True), (torch.rand(1, T, d, device=DEV) * 0.1 + 1e-3).requires_grad_()
    A = -torch.exp(torch.rand(d, N, device=DEV) * 2.7).requires_grad_()
    Bm, Cm = torch.randn(1, T, N, device=DEV, requires_grad=True), torch.randn(1, T, N, device=DEV, requires_grad=True)
    D = torch.ones(d, device=DEV, requires_grad=True)
    for i in range(2):  # warm-up + timed
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        y = scan(u, delta, A, Bm, Cm, D)
        torch.cuda.synchronize()
        t1 = time.perf_counter()
        y.sum().backward()
        torch.cuda.synchronize()
        t2 = time.perf_counter()
    row(f"scan B=1 T={T} d_inner={d} N={N}", f"fwd {1e3 * (t1 - t0):.3f} ms, bwd {1e3 * (t2 - t1):.3f} ms")


def main():
    budget = float(sys.argv[sys.argv.index("--budget") + 1]) if "--budget" in sys.argv else 1e9
    start = time.perf_counter()
    row("device", f"{torch.cuda.get_device_name()}, torch {torch.__version__}, peak {peak() / 1e12:.0f} TFLOP/s")
    for depth in (20, 12):  # d20 first, as gpu_check does
        for kind in ("all-T", "hybrid", "all-M"):
            if time.perf_counter() - start > budget:
                row("skipped (budget spent)", f"d{depth} {kind}")
                continue
            bench(depth, kind)
            torch.cuda.empty_cache()
    for T in (512, 2048, 8192, 16384):
        if time.perf_counter() - start < budget:
            bench_scan(T)


if __name__ == "__main__":
    main()
