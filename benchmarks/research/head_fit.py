import json
import sys
import time

import numpy as np
import torch
from openTSNE import TSNE

from tsimcne_nb.data.synthetic.generator import make_synthetic_blood
from tsimcne_nb.eval.metrics import evaluate
from tsimcne_nb.modelfile import read_file  # checkpoints are data-only files
from tsimcne_nb.nn.models import ContrastiveNet, ProjectionHead, make_backbone

torch.set_num_threads(1)
ck = sys.argv[1]
exag = float(sys.argv[2])
steps = int(sys.argv[3])
ds = make_synthetic_blood(n=3000, random_state=0)
st = read_file(ck, "checkpoint")
bb = make_backbone("resnet18_narrow")
net = ContrastiveNet(bb, ProjectionHead(bb.out_features, 1024, 128))
net.load_state_dict(st["model"])
net.eval()
X = torch.as_tensor(ds.images).permute(0, 3, 1, 2).float().div(255)
with torch.no_grad():
    H = torch.cat([net.features(X[i : i + 500]) for i in range(0, 3000, 500)])
t = time.time()
Y = np.asarray(TSNE(exaggeration=exag, n_jobs=1, random_state=0).fit(H.numpy()), dtype=np.float32)
tt = time.time() - t
res = {"exag": exag, "steps": steps, "tsne": evaluate(Y, ds.labels), "tsne_s": round(tt, 1)}
g = torch.Generator().manual_seed(0)
net.replace_output(2, std=1.0, generator=g)
Yt = torch.as_tensor(Y)
var = float(Yt.var(0).sum())
opt = torch.optim.Adam(net.head.parameters(), lr=1e-3)
t = time.time()
for _s in range(steps):
    idx = torch.randint(0, 3000, (512,), generator=g)
    loss = ((net.head(H[idx]) - Yt[idx]) ** 2).sum(1).mean() / var
    opt.zero_grad()
    loss.backward()
    opt.step()
with torch.no_grad():
    M = net.head(H).numpy()
res["head_s"] = round(time.time() - t, 1)
res["head_map"] = evaluate(M, ds.labels)
res["rel_err"] = float(((M - Y) ** 2).sum(1).mean() / var)
print(json.dumps(res, default=float))
