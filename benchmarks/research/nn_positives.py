"""Research prototype (issue 16): stages 2-3 with feature-space neighbours as extra positives.

From a stage-1 checkpoint (45 epochs of the quick recipe, seed 0) run the quick recipe's
stage 2 (new 2-D output layer, output layer only, 4 epochs, lr 0.03) and stage 3 (all weights,
30 epochs, lr 0.009, 2 warm-up epochs), SGD 0.9 / 5e-4, cosine, batch 256, bf16. With
probability p the positive of an anchor is an augmented view of one of its k nearest
neighbours in the stage-1 backbone feature space (un-augmented images) instead of a second
view of itself: the 2-D attraction then follows the feature-space kNN graph, as t-SNE's does.
"""

import argparse
import json
import math
import time

import torch
from sklearn.neighbors import NearestNeighbors

from tsimcne_nb.data.synthetic.generator import make_synthetic_blood
from tsimcne_nb.eval.metrics import evaluate, knn_accuracy
from tsimcne_nb.modelfile import read_file  # checkpoints are data-only files
from tsimcne_nb.nn.augmentations import make_augmentation
from tsimcne_nb.nn.losses import cauchy_infonce
from tsimcne_nb.nn.models import ContrastiveNet, ProjectionHead, make_backbone

p = argparse.ArgumentParser()
p.add_argument("ckpt")
p.add_argument("--p", type=float, default=0.0)
p.add_argument("--k", type=int, default=15)
p.add_argument("--p2", type=float, default=None)
p.add_argument("--e2", type=int, default=4)
p.add_argument("--e3", type=int, default=30)
p.add_argument(
    "--refresh",
    type=int,
    default=0,
    help="recompute the kNN graph every N stage-3 epochs from current features",
)
p.add_argument("--b3", type=int, default=256, help="stage-3 batch size (lr scaled linearly)")
p.add_argument("--tag", default="")
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()
torch.set_num_threads(1)
ds = make_synthetic_blood(n=3000, random_state=0)
# data-only checkpoints only: a stage-1 checkpoint written before model files became
# data-only must first be converted, once, by whoever trusts it:
#   tsimcne-nb convert OLD.pt NEW.pt --trust
st = read_file(a.ckpt, "checkpoint")
bb = make_backbone("resnet18_narrow")
net = ContrastiveNet(bb, ProjectionHead(bb.out_features, 1024, 128))
net.load_state_dict(st["model"])
net = net.to(memory_format=torch.channels_last)
X = torch.as_tensor(ds.images)


def to_in(u8):
    return u8.permute(0, 3, 1, 2).float().div(255).contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def infer(fn):
    net.eval()
    out = torch.cat([fn(to_in(X[i : i + 512])).float() for i in range(0, len(X), 512)])
    net.train()
    return out.numpy()


def graph():
    H = infer(net.features)
    return NearestNeighbors(n_neighbors=a.k + 1).fit(H).kneighbors(H, return_distance=False)[
        :, 1:
    ], H


nbrs, H = graph()
res = {
    "tag": a.tag,
    "feat_knn_stage1": knn_accuracy(H, ds.labels),
    "graph_label_purity": float((ds.labels[nbrs] == ds.labels[:, None]).mean()),
}
g = torch.Generator().manual_seed(a.seed)
net.replace_output(2, std=1.0, generator=g)
net = net.to(memory_format=torch.channels_last)
aug = make_augmentation("randrot", 28, fill=ds.border_color())
B, n = 256, len(X)
spe = n // B


def view(idx):
    prm = aug.sample_params(len(idx), g, 28, 28)
    return aug.apply(X[idx], prm).contiguous(memory_format=torch.channels_last)


def sched(step, total, base, warm=0):
    if step < warm:
        return base * (step + 1) / warm
    return base * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


nb_t = torch.as_tensor(nbrs)


def run_stage(epochs, lr, warm, params, p_nb, stage3):
    global nb_t
    B = a.b3 if stage3 else 256  # noqa: N806
    spe = n // B
    warm = warm // (B // 256) if stage3 else warm
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=5e-4)
    tot, s = epochs * spe, 0
    for ep in range(epochs):
        if stage3 and a.refresh and ep and ep % a.refresh == 0:
            nb_t = torch.as_tensor(graph()[0])
        perm = torch.randperm(n, generator=g)
        for b in range(spe):
            idx = perm[b * B : (b + 1) * B]
            use = torch.rand(len(idx), generator=g) < p_nb
            pick = nb_t[idx, torch.randint(0, a.k, (len(idx),), generator=g)]
            pos = torch.where(use, pick, idx)
            x = torch.cat([view(idx), view(pos)])
            for gr in opt.param_groups:
                gr["lr"] = sched(s, tot, lr, warm)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                z = net(x).float()
            loss = cauchy_infonce(*z.chunk(2))
            opt.zero_grad()
            loss.backward()
            opt.step()
            s += 1


t0 = time.perf_counter()
run_stage(a.e2, 0.03, 0, net.freeze_all_but_output(), a.p if a.p2 is None else a.p2, False)
res["after_s2"] = evaluate(infer(net), ds.labels)
run_stage(a.e3, 0.009 * a.b3 / 256, 2 * spe, net.unfreeze_all(), a.p, True)
res["after_s3"] = evaluate(infer(net), ds.labels)
res["feat_knn_final"] = knn_accuracy(infer(net.features), ds.labels)
res["s"] = round(time.perf_counter() - t0, 1)
res["args"] = vars(a)
print(json.dumps(res, default=float), flush=True)
with open("nn_positives.jsonl", "a") as fh:
    fh.write(json.dumps(res, default=float) + "\n")
