"""FID and KID: the Fréchet Inception Distance (Heusel et al. 2017) and the Kernel Inception
Distance (Bińkowski et al. 2018), computed by torchmetrics on the 2048 pool features of
torch-fidelity's Inception-v3, the port of the TensorFlow network that published FIDs use.

Lower is better for both. Both are biased by the number of images (FID strongly so), so
compare scores only at equal ``images``.

* The Inception weights are never downloaded during a run: `find_weights` looks for the file
  and, when it is missing, says where to get it and where to put it.
* The real images' features are computed once per set of images and weights, and kept under
  ``<ganlab cache>/inception/`` (``$GANLAB_CACHE``): runs with other seeds, losses or
  models on the same data set reuse them.
* G's images are drawn from fixed latent vectors in eval mode (the moving average of G when
  the recipe keeps one); their features are computed once per evaluation and shared by
  ``fid`` and ``kid``.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path

import torch
from pydantic import Field
from torch import nn

import ganlab
from ganlab_plugins.metrics.swd_metric import finite_generator, note_fewer

#: torch-fidelity's file of the FID Inception weights, and where it publishes it.
WEIGHTS_NAME = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{WEIGHTS_NAME}"
#: The environment variable that may name the weights file.
WEIGHTS_ENV = "GANLAB_FID_WEIGHTS"

#: uint8 images (N, 3, H, W) -> features (N, D).
Extractor = Callable[[torch.Tensor], torch.Tensor]


class InceptionParams(ganlab.Params):
    images: int = Field(
        default=2048, gt=1, description="real and generated images compared (50000 in papers)"
    )
    seed: int = Field(
        default=0, ge=0, description="seed of the latent vectors and of the real images' choice"
    )
    weights: str | None = Field(
        default=None,
        description=f"the Inception weights file; default: ${WEIGHTS_ENV}, else the torch "
        f"hub cache (<torch hub dir>/checkpoints/{WEIGHTS_NAME})",
    )
    batch_size: int = Field(default=64, gt=0, description="images per Inception forward pass")


class KIDParams(InceptionParams):
    subsets: int = Field(default=100, gt=0, description="random subsets the MMD is averaged over")
    subset_size: int = Field(default=1000, gt=1, description="images per subset (at most `images`)")


# --- the Inception network ----------------------------------------------------------------


def find_weights(given: str | None, metric: str) -> Path:
    """The Inception weights file: ``given``, else ``$GANLAB_FID_WEIGHTS``, else the hub cache."""
    hub = Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_NAME
    for source, path in (
        ("its weights param", given),
        (f"${WEIGHTS_ENV}", os.environ.get(WEIGHTS_ENV)),
    ):
        if path:
            if not Path(path).expanduser().is_file():
                raise ganlab.GanlabError(
                    f"{metric}: {source} names the Inception weights file {path}, which does "
                    "not exist. Give the path of the downloaded file."
                )
            return Path(path).expanduser()
    if hub.is_file():
        return hub
    raise ganlab.GanlabError(
        f"{metric} needs the FID Inception weights, {WEIGHTS_NAME}, and they "
        "are not on this machine (ganlab never downloads them during a run). Download "
        f"{WEIGHTS_URL} and put it at {hub}, or point ${WEIGHTS_ENV} (or the metric's "
        "`weights` param) at the file. Without it, use the swd metric, which needs no weights."
    )


#: Inception networks by weights file: loaded once per process.
_NETWORKS: dict[str, nn.Module] = {}


def inception(weights: Path, metric: str) -> nn.Module:
    """torchmetrics' Inception-v3 feature extractor (2048 features) with these weights."""
    key = str(weights.resolve())
    if key in _NETWORKS:
        return _NETWORKS[key]
    from torchmetrics.image.fid import NoTrainInceptionV3

    try:
        # torch-fidelity loads the file with weights_only=False, which could run code hidden
        # in it: only a file that loads safely gets that far.
        torch.load(weights, map_location="cpu", weights_only=True)
        network = NoTrainInceptionV3(
            name="inception-v3-compat",
            features_list=["2048"],
            feature_extractor_weights_path=str(weights),
        )
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ganlab.GanlabError(
            f"{metric}: {weights} is not the FID Inception weights file ({first_line}). "
            f"Download {WEIGHTS_URL} again."
        ) from None
    _NETWORKS[key] = network
    return network


class GivenFeatures(nn.Module):
    """The feature extractor handed to torchmetrics when the features are already computed:
    ganlab computes them once and shares them between metrics and runs."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between two sets of features (rows), by torchmetrics."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=GivenFeatures(real.shape[1]))
    metric.update(real, real=True)
    metric.update(fake, real=False)
    return float(metric.compute())


def kernel_distance(
    real: torch.Tensor, fake: torch.Tensor, subsets: int, subset_size: int, seed: int
) -> tuple[float, float]:
    """KID (mean and standard deviation over random subsets) by torchmetrics."""
    from torchmetrics.image.kid import KernelInceptionDistance

    size = min(subset_size, len(real), len(fake))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "KID keeps all features in memory": we know
        metric = KernelInceptionDistance(
            feature=GivenFeatures(real.shape[1]), subsets=subsets, subset_size=size
        )
    metric.update(real, real=True)
    metric.update(fake, real=False)
    # torchmetrics draws the subsets from the global RNG: seeded here, and the training
    # run's RNG stream left exactly as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


# --- features of real and generated images ------------------------------------------------

#: The last features of G's images: (run, step, what was asked) -> features, so that fid and
#: kid at one evaluation run Inception once. The run is held weakly.
_last_fake: tuple[weakref.ref[ganlab.RunView], int, tuple[object, ...], torch.Tensor] | None = None


class InceptionFeatures:
    """Features of ``params.images`` real and generated images, for one metric of a run.

    ``extractor`` replaces the Inception network (tests use a small one); ``extractor_key``
    names it for the on-disk cache of real features (None: no disk cache).
    """

    def __init__(
        self,
        params: InceptionParams,
        metric: str,
        extractor: Extractor | None = None,
        extractor_key: str | None = None,
    ) -> None:
        # Checked when the metric is built, so that a missing package or weights file stops
        # the run before it starts, not at its first evaluation.
        try:
            import torch_fidelity  # noqa: F401
            import torchmetrics  # noqa: F401
        except ImportError:
            raise ganlab.GanlabError(
                f"{metric} needs torchmetrics and torch-fidelity: pip install 'ganlab[fid]'."
            ) from None
        self.params = params
        self.metric = metric
        if extractor is None:
            weights = find_weights(params.weights, metric)
            extractor = inception(weights, metric)
            stat = weights.stat()
            extractor_key = f"inception:{weights.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        self.extractor = extractor
        self.extractor_key = extractor_key
        self.real: torch.Tensor | None = None

    def compute(self, images: torch.Tensor, device: torch.device) -> torch.Tensor:
        """Features of uint8 images, in batches, as float64 on the CPU."""
        extractor = self.extractor
        if isinstance(extractor, nn.Module):
            extractor.to(device)
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)  # grey: the same value in R, G and B
        with torch.no_grad():
            return torch.cat(
                [
                    extractor(batch.to(device)).double().cpu()
                    for batch in images.split(self.params.batch_size)
                ]
            )

    def real_features(self, run: ganlab.RunView) -> torch.Tensor:
        if self.real is not None:
            return self.real
        images = ganlab.to_uint8(run.real_images(self.params.images, seed=self.params.seed))
        note_fewer(self.metric, len(images), self.params.images)
        # Keyed by the images themselves: whatever the data set, the same pixels and the
        # same network give the same features.
        digest = hashlib.sha256(images.numpy().tobytes())
        digest.update(str(self.extractor_key).encode())
        path = ganlab.cache_dir() / "inception" / f"{digest.hexdigest()[:24]}.pt"
        if self.extractor_key is not None and path.is_file():
            with contextlib.suppress(Exception):  # unreadable: computed and written again
                self.real = torch.load(path, map_location="cpu", weights_only=True)
                return self.real
        self.real = self.compute(images, run.device)
        if self.extractor_key is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            try:
                torch.save(self.real, tmp)
                os.replace(tmp, path)  # a concurrent run writes the same bytes
            finally:
                tmp.unlink(missing_ok=True)  # interrupted: no half-written file is left
        return self.real

    def fake_features(self, run: ganlab.RunView) -> torch.Tensor:
        global _last_fake
        asked = (self.params.images, self.params.seed, self.params.batch_size, id(self.extractor))
        if _last_fake is not None:
            ref, step, last_asked, features = _last_fake
            if ref() is run and step == run.step and last_asked == asked:
                return features
        images = run.sample_images(
            self.params.images, self.params.seed, batch_size=self.params.batch_size
        )
        features = self.compute(images, run.device)
        _last_fake = (weakref.ref(run), run.step, asked, features)
        return features


# --- the metrics ---------------------------------------------------------------------------


class FID:
    """``{"fid": ...}``: Fréchet distance between Inception features of real and G's images."""

    def __init__(
        self,
        params: InceptionParams,
        extractor: Extractor | None = None,
        extractor_key: str | None = None,
    ) -> None:
        self.features = InceptionFeatures(params, "fid", extractor, extractor_key)

    def __call__(self, run: ganlab.RunView) -> dict[str, float]:
        real, fake = self.features.real_features(run), self.features.fake_features(run)
        if not finite_generator(run):  # its images, made uint8, would be black
            return {"fid": math.nan}
        return {"fid": frechet_distance(real, fake)}


class KID:
    """``{"kid": ..., "kid_std": ...}``, x1e3: the unbiased MMD with a cubic polynomial kernel
    between Inception features, averaged over random subsets."""

    def __init__(
        self,
        params: KIDParams,
        extractor: Extractor | None = None,
        extractor_key: str | None = None,
    ) -> None:
        self.params = params
        self.features = InceptionFeatures(params, "kid", extractor, extractor_key)

    def __call__(self, run: ganlab.RunView) -> dict[str, float]:
        real, fake = self.features.real_features(run), self.features.fake_features(run)
        p = self.params
        if not finite_generator(run):  # its images, made uint8, would be black
            return {"kid": math.nan, "kid_std": math.nan}
        mean, std = kernel_distance(real, fake, p.subsets, p.subset_size, p.seed)
        return {"kid": mean * 1e3, "kid_std": std * 1e3}


def build_fid(params: InceptionParams) -> ganlab.Metric:
    """Fréchet Inception Distance (torchmetrics, torch-fidelity's Inception); lower: better."""
    return FID(params)


def build_kid(params: KIDParams) -> ganlab.Metric:
    """Kernel Inception Distance x1e3 (torchmetrics, torch-fidelity's Inception); lower: better."""
    return KID(params)


@ganlab.hookimpl
def ganlab_register_metrics(register: ganlab.Register) -> None:
    register("fid", build_fid, params=InceptionParams, results=("fid",))
    register("kid", build_kid, params=KIDParams, results=("kid", "kid_std"))
