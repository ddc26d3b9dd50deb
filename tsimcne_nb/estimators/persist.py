"""Saving and loading fitted estimators: :meth:`save` writes a model file
(:mod:`tsimcne_nb.modelfile`, never pickled), :meth:`load` reads one back and rebuilds the
network.  A mixin of :class:`~tsimcne_nb.estimators.base._ContrastiveLearner`."""


from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from tsimcne_nb._io import check_can_write
from tsimcne_nb.errors import ConfigError, DataError, ModelFileError
from tsimcne_nb.train import device as tu
from tsimcne_nb.train.budgets import Budget
from tsimcne_nb.train.checkpoints import _FORMAT
from tsimcne_nb.train.feed import _unwrap


class _ModelFileMixin:
    """``save``/``load`` of :class:`TSimCNE`, :class:`SimCLR` and :class:`BYOL`."""

    # ---------------------------------------------------------------- save / load
    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the fitted model to one file (atomic; refuses to overwrite by default).

        The file holds the weights, the parameters, the augmentation, the image size,
        the manifest, the history and the training embedding, in a data-only format
        (:mod:`tsimcne_nb.modelfile`: safetensors + JSON, with a checksum) that cannot
        run code when it is opened.  A custom backbone module is stored as its weights
        only; :meth:`load` then needs a fresh instance of it (``backbone=...``).
        """
        from tsimcne_nb.modelfile import write_file

        self._check_fitted()
        path = check_can_write(path, overwrite)
        params = self._config_for_manifest()
        arch = self._arch()
        if isinstance(self.backbone, torch.nn.Module):
            cls = type(self.backbone)
            arch["custom_backbone"] = f"{cls.__module__}.{cls.__qualname__}"
        payload = {
            "format": _FORMAT,
            "class": type(self).__name__,
            "params": params,
            "arch": arch,
            "state_dict": {k: v.detach().cpu() for k, v in _unwrap(self.model_).state_dict().items()},
            "augmentation": self.augmentation_.to_config(),
            "image_size": self.image_size_,
            "manifest": self.manifest_,
            "history": self.history_.to_dict(orient="list"),
            "timings": self.timings_,
            "embedding": np.asarray(self.embedding_),
            "fitted": {
                "random_state_": self.random_state_, "batch_size_": self.batch_size_,
                "learning_rate_": self.learning_rate_, "total_epochs_": list(self.total_epochs_),
                "backbone_": self.backbone_, "stopped_early_": self.stopped_early_,
                "n_images_": self.n_images_,
            },
        }
        return write_file(path, "model", payload, overwrite=overwrite)

    def _arch(self) -> dict[str, Any]:
        return {}

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        device: str = "auto",
        *,
        backbone: torch.nn.Module | None = None,
        allow_pickle: bool = False,
    ) -> Any:
        """Load a model written by :meth:`save` (GPU-trained models load on a CPU too).

        Opening the file runs no code: it holds only data (:mod:`tsimcne_nb.modelfile`),
        and its checksum is verified, so a damaged file is refused.

        Parameters
        ----------
        path : path
            The file (e.g. the ``model.pt`` of ``tsimcne-nb fit``).
        device : str
            Where to put the model (``"auto"``, ``"cpu"``, ``"cuda"``, ...).
        backbone : torch.nn.Module, optional
            A fresh instance of the custom backbone module the model was trained with
            (only for such models; its weights are replaced by the saved ones).
        allow_pickle : bool
            Also read a model written by an older tsimcne-nb with ``torch.save`` (a
            pickle).  Unpickling RUNS CODE the file contains: only for files whose
            source you trust, once, to convert them (save the loaded model again, or
            ``tsimcne-nb convert OLD NEW --trust``).

        Raises
        ------
        FileNotFoundError
            No file at ``path``.
        ModelFileError
            The file is not a model, is damaged, or is an old pickle (without
            ``allow_pickle``).
        DataError
            The file holds another kind of model (e.g. SimCLR for ``TSimCNE.load``).
        """
        from tsimcne_nb.modelfile import is_legacy_pickle, load_legacy_pickle, read_file

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no saved model at {path}")
        dev = tu.resolve_device(device)
        if allow_pickle and is_legacy_pickle(path):
            payload = load_legacy_pickle(path, map_location="cpu")
            if not isinstance(payload, dict) or "class" not in payload:
                raise ModelFileError(f"{path} is a pickle but not a model saved by tsimcne-nb.")
        else:
            payload = read_file(path, "model")
        return cls._from_payload(payload, path, dev, backbone)

    @classmethod
    def _from_payload(cls, payload: dict[str, Any], path: Path, dev: torch.device,
                      backbone: torch.nn.Module | None) -> Any:
        from tsimcne_nb.nn.augmentations import Augmentation

        if payload.get("class") != cls.__name__:
            raise DataError(
                f"{path} holds a {payload.get('class')} model; load it with {payload.get('class')}.load."
            )
        missing = [k for k in ("params", "arch", "state_dict", "augmentation", "image_size", "manifest",
                               "history", "timings", "embedding", "fitted") if k not in payload]
        if missing:
            raise ModelFileError(f"{path} is incomplete (no {', '.join(missing)}); it cannot be loaded.")
        arch = dict(payload["arch"])
        custom = arch.get("custom_backbone")
        if custom is not None and "model_object" not in payload and backbone is None:
            raise ConfigError(
                f"{path} was trained with a custom backbone module ({custom}); files hold weights, "
                "never code, so pass a fresh instance of it: "
                f"{cls.__name__}.load(path, backbone=MyBackbone(...))."
            )
        if backbone is not None and not isinstance(backbone, torch.nn.Module):
            raise ConfigError(f"backbone must be a torch.nn.Module; got {type(backbone).__name__}.")
        params = dict(payload["params"])
        params["callbacks"] = None
        if isinstance(params.get("budget"), dict):
            params["budget"] = Budget(**params["budget"])  # __post_init__ restores the tuples
        if isinstance(params.get("augment"), dict):
            params["augment"] = Augmentation.from_config(params["augment"])
        if custom is not None or "model_object" in payload:
            params["backbone"] = backbone
        est = cls(**{k: v for k, v in params.items() if k in cls._get_param_names()})
        for k, v in payload["fitted"].items():
            setattr(est, k, tuple(v) if k == "total_epochs_" else v)
        est.image_size_ = payload["image_size"]
        if "model_object" in payload and backbone is None:  # an old pickle, trusted by the caller
            model = payload["model_object"]
        else:
            if custom is not None or (backbone is not None and "model_object" in payload):
                arch["backbone"] = backbone
            model = est._rebuild(arch, est.image_size_)
            try:
                model.load_state_dict(payload["state_dict"])
            except RuntimeError as exc:
                raise ModelFileError(
                    f"the weights in {path} do not fit the architecture they describe"
                    + (" (is the backbone module the one it was trained with?)" if backbone is not None else "")
                    + f": {str(exc).splitlines()[0]}"
                ) from exc
        model.to(dev)
        if est.channels_last:
            model.to(memory_format=torch.channels_last)
        model.eval()
        est.model_ = model
        est.device_ = dev
        est.augmentation_ = Augmentation.from_config(payload["augmentation"])
        est.manifest_ = payload["manifest"]
        est.history_ = pd.DataFrame(payload["history"])
        est.timings_ = payload["timings"]
        emb = payload["embedding"]
        est.embedding_ = np.asarray(emb.cpu().numpy() if isinstance(emb, torch.Tensor) else emb, np.float32)
        return est

    def _rebuild(self, arch: dict[str, Any], image_size: int) -> torch.nn.Module:
        raise NotImplementedError
