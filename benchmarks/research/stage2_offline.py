"""Offline prototype of the 2-D stage from a stage-1 checkpoint: t-SNE targets, regression, Cauchy fine-tune."""

import argparse
import json
import math
import time

import numpy as np
import torch
from openTSNE import TSNE

from tsimcne_nb.data.synthetic.generator import make_synthetic_blood
from tsimcne_nb.eval.metrics import evaluate, knn_accuracy
from tsimcne_nb.modelfile import read_file  # checkpoints are data-only files
from tsimcne_nb.nn.augmentations import make_augmentation
from tsimcne_nb.nn.losses import cauchy_infonce
from tsimcne_nb.nn.models import ContrastiveNet, ProjectionHead, make_backbone

p = argparse.ArgumentParser()
p.add_argument("ckpt")
p.add_argument("--seed", type=int, default=0)
p.add_argument("--exag", type=float, default=1.0)
p.add_argument("--reg-epochs", type=int, default=10)
p.add_argument("--reg-aug", default="geom")
p.add_argument("--reg-opt", default="adamw")
p.add_argument("--reg-lr", type=float, default=1e-3)
p.add_argument("--ft-epochs", type=int, default=0)
p.add_argument("--ft-lr", type=float, default=0.009)
p.add_argument("--ft-guide", type=float, default=0.0)
p.add_argument("--ft-aug", default="full")
p.add_argument("--tag", default="")
a = p.parse_args()
torch.set_num_threads(1)
ds = make_synthetic_blood(n=3000, random_state=0)
st = read_file(a.ckpt, "checkpoint")
bb = make_backbone("resnet18_narrow")
net = ContrastiveNet(bb, ProjectionHead(bb.out_features, 1024, 128))
net.load_state_dict(st["model"])
net = net.to(memory_format=torch.channels_last)
X = torch.as_tensor(ds.images)  # uint8 NHWC


def to_in(u8):
    return u8.permute(0, 3, 1, 2).float().div(255).contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def infer(fn):
    net.eval()
    out = torch.cat([fn(to_in(X[i : i + 512])).float() for i in range(0, len(X), 512)])
    net.train()
    return out.numpy()


H = infer(net.features)
res = {"tag": a.tag, "ckpt": a.ckpt, "feat_knn_stage1": knn_accuracy(H, ds.labels)}
t0 = time.perf_counter()
Y = np.asarray(TSNE(exaggeration=a.exag, n_jobs=1, random_state=a.seed).fit(H), dtype=np.float32)
res["tsne"] = evaluate(Y, ds.labels)
res["tsne_s"] = round(time.perf_counter() - t0, 1)
g = torch.Generator().manual_seed(a.seed)
net.replace_output(2, std=1.0, generator=g)
net = net.to(memory_format=torch.channels_last)
fill = ds.border_color()
augs = {
    "full": make_augmentation("randrot", 28, fill=fill),
    "geom": make_augmentation("randrot", 28, fill=fill, crop=False, jitter_p=0.0, grayscale_p=0.0),
    "none": None,
}
Yt = torch.as_tensor(Y)
var = float(Yt.var(0).sum())


def views(idx, aug, k=2):
    imgs = X[idx]
    if aug is None:
        return to_in(torch.cat([imgs] * k))
    prm = aug.sample_params(k * len(idx), g, 28, 28)
    return aug.apply(torch.cat([imgs] * k), prm).contiguous(memory_format=torch.channels_last)


def sched(step, total, base, warm=0):
    if step < warm:
        return base * (step + 1) / warm
    return base * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


B = 256
n = len(X)
spe = n // B
# regression
opt = (
    torch.optim.AdamW(net.parameters(), lr=a.reg_lr, weight_decay=1e-4)
    if a.reg_opt == "adamw"
    else torch.optim.SGD(net.parameters(), lr=a.reg_lr, momentum=0.9, weight_decay=5e-4)
)
tot = max(1, a.reg_epochs * spe)
s = 0
t0 = time.perf_counter()
for _ep in range(a.reg_epochs):
    perm = torch.randperm(n, generator=g)
    for b in range(spe):
        idx = perm[b * B : (b + 1) * B]
        x = views(idx, augs[a.reg_aug])
        for gr in opt.param_groups:
            gr["lr"] = sched(s, tot, a.reg_lr)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            z = net(x)
        tgt = torch.cat([Yt[idx]] * 2)
        loss = ((z.float() - tgt) ** 2).sum(1).mean() / var
        opt.zero_grad()
        loss.backward()
        opt.step()
        s += 1
res["reg_s"] = round(time.perf_counter() - t0, 1)
res["after_reg"] = evaluate(infer(net), ds.labels) if a.reg_epochs else None
if a.ft_epochs:
    opt = torch.optim.SGD(net.parameters(), lr=a.ft_lr, momentum=0.9, weight_decay=5e-4)
    tot = a.ft_epochs * spe
    s = 0
    t0 = time.perf_counter()
    for _ep in range(a.ft_epochs):
        perm = torch.randperm(n, generator=g)
        for b in range(spe):
            idx = perm[b * B : (b + 1) * B]
            x = views(idx, augs[a.ft_aug])
            for gr in opt.param_groups:
                gr["lr"] = sched(s, tot, a.ft_lr, warm=spe)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                z = net(x).float()
            loss = cauchy_infonce(*z.chunk(2))
            if a.ft_guide:
                loss = loss + a.ft_guide * ((z - torch.cat([Yt[idx]] * 2)) ** 2).sum(1).mean() / var
            opt.zero_grad()
            loss.backward()
            opt.step()
            s += 1
    res["ft_s"] = round(time.perf_counter() - t0, 1)
    res["after_ft"] = evaluate(infer(net), ds.labels)
res["feat_knn_final"] = knn_accuracy(infer(net.features), ds.labels)
res["args"] = vars(a)
print(json.dumps(res, default=float), flush=True)
with open("logs/s2.jsonl", "a") as fh:
    fh.write(json.dumps(res, default=float) + "\n")
