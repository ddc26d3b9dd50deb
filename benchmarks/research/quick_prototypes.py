"""Research prototypes for the quick budget (issue 16): optimiser, t-SNE-guided 2-D stage, width.

Prototype only (monkeypatches the trainer); the winners are ported into the library.
Prints one JSON line per run.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--augment", default="randrot")
    p.add_argument("--epochs", default="45,4,30")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--opt", default="sgd")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--wd", type=float, default=5e-4)
    p.add_argument("--s3", type=float, default=0.3)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--backbone", default="resnet18_narrow")
    p.add_argument("--tsne-init", action="store_true")
    p.add_argument("--s2-train", default="all")
    p.add_argument("--s2-lr", type=float, default=None)
    p.add_argument("--tsne-scale", type=float, default=1.0)
    p.add_argument("--tsne-on", default="h")
    p.add_argument("--crop-lo", type=float, default=None)
    p.add_argument("--views", type=int, default=2)
    p.add_argument("--queue", type=int, default=0)
    p.add_argument("--ema", type=float, default=0.0)
    p.add_argument("--save-h", default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tag", default="")
    p.add_argument("--log", default=None)
    a = p.parse_args()

    from types import SimpleNamespace

    from tsimcne_nb.estimators import TSimCNE
    from tsimcne_nb.train.feed import _infer
    from tsimcne_nb.train.loop import _Trainer

    # the pieces this prototype patches, under the one name it used before the layers split
    T = SimpleNamespace(TSimCNE=TSimCNE, _Trainer=_Trainer, _infer=_infer)
    from tsimcne_nb.data.synthetic.generator import make_synthetic_blood
    from tsimcne_nb.eval.metrics import evaluate, knn_accuracy

    ds = make_synthetic_blood(n=a.n, random_state=0)
    state: dict = {}

    orig_make_opt = T._Trainer._make_optimizer

    def make_opt(self, stage):
        m = self.model
        if stage.trainable == "output":
            params = m.freeze_all_but_output()
        else:
            params = [q for q in m.unfreeze_all() if q.requires_grad]
        if a.opt == "sgd":
            return orig_make_opt(self, stage)
        if a.opt == "adamw":
            return torch.optim.AdamW(params, lr=stage.lr, weight_decay=a.wd)
        raise SystemExit(a.opt)

    T._Trainer._make_optimizer = make_opt

    orig_step = T._Trainer._train_step

    def step(self, net, opt, idx, gen, lr):
        state["idx"] = idx
        state["stage"] = self._cur_stage
        return orig_step(self, net, opt, idx, gen, lr)

    T._Trainer._train_step = step

    orig_after = T.TSimCNE._after_step

    def after_step(self, model, step_i, total):
        if a.ema and state.get("stage") == 3:
            sd = model.state_dict()
            ema = state.get("ema")
            if ema is None:
                state["ema"] = {
                    k: v.detach().clone() for k, v in sd.items() if v.dtype.is_floating_point
                }
            else:
                for k, v in ema.items():
                    v.mul_(a.ema).add_(sd[k].detach(), alpha=1 - a.ema)
            if step_i == total - 1 and state.get("ema_final_stage", True):
                model.load_state_dict({**sd, **state["ema"]})
        return orig_after(self, model, step_i, total)

    T.TSimCNE._after_step = after_step
    orig_epoch = T._Trainer._run_epoch

    def run_epoch(self, stage, epoch, net, opt, bar):
        self._cur_stage = stage.number
        if stage.number == 2 and a.tsne_init and "Y" not in state:
            from openTSNE import TSNE

            self.model.eval()
            with torch.no_grad():
                what = "features" if a.tsne_on == "h" else "output"
                if a.tsne_on == "z":
                    # features of the 128-d head: needs the pre-replacement output; use h instead
                    what = "features"
                F = T._infer(
                    self.model, self.feed, np.arange(self.feed.n), what, self.cfg["channels_last"]
                )
            self.model.train()
            if a.save_h:
                np.savez(a.save_h, h=F, labels=ds.labels)
            t0 = time.perf_counter()
            Y = TSNE(n_jobs=a.threads, random_state=self.seed, verbose=False).fit(F)
            Y = np.asarray(Y, dtype=np.float32) * a.tsne_scale
            state["tsne_time"] = time.perf_counter() - t0
            state["tsne_knn"] = evaluate(Y, ds.labels)
            state["Y"] = torch.as_tensor(Y, device=self.device)
            state["Yvar"] = float(Y.var(0).sum())
        return orig_epoch(self, stage, epoch, net, opt, bar)

    T._Trainer._run_epoch = run_epoch

    orig_views = T._Trainer._two_views

    def views(self, images, gen):
        if a.views == 2 or self._cur_stage != 1:
            return orig_views(self, images, gen)
        b, h, w = images.shape[:3]
        params = self.aug.sample_params(a.views * b, gen, h, w)
        return self.aug.apply(torch.cat([images] * a.views), params)

    T._Trainer._two_views = views

    def queue_cauchy(z):
        z = z.float()
        n = z.shape[0]
        b = n // 2
        key = ("q", state.get("stage"))
        q = state.get(key)
        logq = -torch.log1p(torch.cdist(z, z).pow(2))
        eye = torch.eye(n, dtype=torch.bool, device=z.device)
        parts = [logq.masked_fill(eye, float("-inf"))]
        if q is not None:
            parts.append(-torch.log1p(torch.cdist(z, q).pow(2)))
        lse = torch.logsumexp(torch.cat(parts, 1), dim=1)
        idx = torch.arange(n, device=z.device)
        pos = logq[idx, (idx + b) % n]
        new = z.detach()
        state[key] = new if q is None else torch.cat([new, q])[: a.queue]
        return (lse - pos).mean()

    def multi_cauchy(z, V):
        z = z.float()
        n = z.shape[0]
        b = n // V
        d2 = torch.cdist(z, z).pow(2)
        logq = -torch.log1p(d2)
        eye = torch.eye(n, dtype=torch.bool, device=z.device)
        lse = torch.logsumexp(logq.masked_fill(eye, float("-inf")), dim=1)
        ids = torch.arange(n, device=z.device) % b
        pos = (ids[:, None] == ids[None, :]) & ~eye
        pos_mean = (logq * pos).sum(1) / pos.sum(1)
        return (lse - pos_mean).mean()

    class Est(T.TSimCNE):
        def _loss(self, net, x):
            if a.tsne_init and state.get("stage") == 2:
                z = net(x).float()
                tgt = state["Y"][torch.as_tensor(state["idx"], device=z.device)]
                tgt = torch.cat([tgt, tgt])
                return ((z - tgt) ** 2).sum(1).mean() / state["Yvar"]
            if a.queue and state.get("stage") in (2, 3):
                return queue_cauchy(net(x))
            if a.views != 2 and state.get("stage") == 1:
                return multi_cauchy(net(x), a.views)
            return super()._loss(net, x)

        def _stages(self, cfg):
            st = super()._stages(cfg)
            if a.tsne_init:
                st[1].trainable = a.s2_train
                if a.s2_lr is not None:
                    st[1].lr = a.s2_lr
            return st

    epochs = tuple(int(e) for e in a.epochs.split(","))
    lr = a.lr if a.lr is not None else "auto"
    augment = a.augment
    if a.crop_lo is not None:
        from tsimcne_nb.nn.augmentations import make_augmentation

        augment = make_augmentation(a.augment, 28, crop_scale=(a.crop_lo, 1.0))
    model = Est(
        augment=augment,
        budget="quick",
        total_epochs=epochs,
        batch_size=a.batch,
        learning_rate=lr,
        stage3_lr_factor=a.s3,
        warmup_epochs=a.warmup,
        backbone=a.backbone,
        weight_decay=a.wd,
        num_threads=a.threads,
        random_state=a.seed,
        progress=False,
    )
    t0 = time.perf_counter()
    Y = model.fit_transform(ds)
    out = {
        "tag": a.tag,
        "seed": a.seed,
        **{k: v for k, v in vars(a).items() if k not in ("log", "tag", "seed")},
    }
    out["time_s"] = round(time.perf_counter() - t0, 1)
    out.update({k: round(v, 4) for k, v in evaluate(Y, ds.labels).items()})
    out["feat_knn"] = round(knn_accuracy(model.features(ds), ds.labels), 4)
    if "tsne_knn" in state:
        out["tsne_of_h"] = {k: round(v, 4) for k, v in state["tsne_knn"].items()}
        out["tsne_time"] = round(state["tsne_time"], 1)
    h = model.history_
    out["stage_time"] = h.groupby("stage")["time"].sum().round(1).to_dict()
    line = json.dumps(out)
    print(line, flush=True)
    if a.log:
        with open(a.log, "a") as fh:
            fh.write(line + "\n")


if __name__ == "__main__":
    main()
