"""Training-step speed, alternating in one process: stock ReLU + nn.Dropout vs fashionae's fused
mask vs no dropout (paper autoencoder, l_size 512, batch 100, channels-last, fused Adam).

    .venv/bin/python benchmarks/dropout_speed.py
"""
import torch, time, statistics
from fashionae.models import Dropout, ModelConfig, build_model
def mk(fast, p=0.2):
    torch.manual_seed(0)
    m = build_model(ModelConfig(dropout=p)).to(memory_format=torch.channels_last)
    for mod in m.modules():
        if isinstance(mod, Dropout): mod.fast = fast
    opt = torch.optim.Adam(m.parameters(), 1e-3, fused=True)
    x = torch.rand(100, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    def step():
        out = m(x); opt.zero_grad(set_to_none=True); out.loss.backward(); opt.step()
    return step
variants = {"stock nn.ReLU + nn.Dropout": mk(False), "fused ReLU+dropout mask": mk(True), "no dropout (p=0)": mk(True, 0.0)}
for s in variants.values():
    for _ in range(5): s()
res = {k: [] for k in variants}
for rep in range(6):
    for k, s in variants.items():
        t = time.perf_counter()
        for _ in range(15): s()
        res[k].append(1500 / (time.perf_counter() - t))
for k, v in res.items(): print(f"{k:30s} median {statistics.median(v):6.0f} img/s  ({', '.join(f'{x:.0f}' for x in v)})")
