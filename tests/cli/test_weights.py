"""``esrgan-lab interp``, ``convert`` and ``weights`` through ``esrgan_lab.cli.main``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from esrgan_lab.cli import main
from esrgan_lab.model.rrdbnet import RRDBNet
from esrgan_lab.weights.checkpoints import (
    convert_state_dict,
    detect_layout,
    load_checkpoint,
    read_checkpoint,
)
from tests.helpers import make_tiny


def _tiny_file(path: Path, layout: str = "basicsr") -> dict[str, torch.Tensor]:
    sd = make_tiny().state_dict()
    torch.save(convert_state_dict(sd, layout), path)
    return sd


def _error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"esrgan-lab {command}: error: ")
    return err


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("ESRGAN_LAB_WEIGHTS", str(folder))
    return folder


def test_convert_between_layouts_and_formats(tmp_path, capsys) -> None:
    src = tmp_path / "in.pth"
    sd = _tiny_file(src, layout="esrgan")
    old = tmp_path / "old.safetensors"
    assert main(["convert", str(src), str(old), "--layout", "old"]) == 0
    state, meta = read_checkpoint(old)
    assert detect_layout(state) == "old" and meta["esrgan_lab.layout"] == "old"
    back = tmp_path / "back.pth"
    assert main(["convert", str(old), str(back)]) == 0
    plain = torch.load(back, weights_only=True)
    assert list(plain) == list(sd)
    assert all(torch.equal(plain[k], sd[k]) for k in sd)
    assert "(old) ->" in capsys.readouterr().out


def test_convert_never_overwrites_input(tmp_path, capsys) -> None:
    src = tmp_path / "in.pth"
    _tiny_file(src)
    before = src.read_bytes()
    assert main(["convert", str(src), str(src), "--layout", "esrgan"]) == 1
    assert "output is the input" in _error_line(capsys, "convert")
    # Same file through another spelling of the path, even with --force.
    other = tmp_path / "sub" / ".." / "in.pth"
    (tmp_path / "sub").mkdir()
    assert main(["convert", str(src), str(other), "--force"]) == 1
    _error_line(capsys, "convert")
    assert src.read_bytes() == before


def test_convert_existing_output_needs_force(tmp_path, capsys) -> None:
    src, out = tmp_path / "in.pth", tmp_path / "out.pth"
    _tiny_file(src)
    out.write_bytes(b"keep me")
    assert main(["convert", str(src), str(out)]) == 1
    assert "--force" in _error_line(capsys, "convert")
    assert out.read_bytes() == b"keep me"
    assert main(["convert", str(src), str(out), "--force"]) == 0
    assert "conv_first.weight" in load_checkpoint(out)


def test_convert_errors_are_one_line(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.pth"
    torch.save({"encoder.weight": torch.zeros(2)}, bad)
    assert main(["convert", str(bad), str(tmp_path / "o.pth")]) == 1
    assert "'encoder.weight'" in _error_line(capsys, "convert")
    assert main(["convert", str(tmp_path / "absent.pth"), str(tmp_path / "o.pth")]) == 1
    assert "no such checkpoint file" in _error_line(capsys, "convert")
    assert not (tmp_path / "o.pth").exists()


def test_interp_writes_the_blend(tmp_path, capsys) -> None:
    a, b, out = tmp_path / "psnr.pth", tmp_path / "gan.pth", tmp_path / "interp.safetensors"
    sd_a = _tiny_file(a)
    sd_b = _tiny_file(b, layout="old")
    assert main(["interp", str(a), str(b), "--alpha", "0.8", "-o", str(out)]) == 0
    blend = load_checkpoint(out)
    for k in sd_a:
        torch.testing.assert_close(blend[k], 0.2 * sd_a[k] + 0.8 * sd_b[k], rtol=1e-6, atol=1e-7)
    assert "0.8" in capsys.readouterr().out


def test_interp_errors(tmp_path, capsys) -> None:
    a, b = tmp_path / "a.pth", tmp_path / "b.pth"
    _tiny_file(a)
    _tiny_file(b)
    assert main(["interp", str(a), str(b), "--alpha", "1.5", "-o", str(tmp_path / "o.pth")]) == 1
    assert "alpha must be in [0, 1]" in _error_line(capsys, "interp")
    before = b.read_bytes()
    assert main(["interp", str(a), str(b), "--alpha", "0.5", "-o", str(b), "--force"]) == 1
    assert "output is the input" in _error_line(capsys, "interp")
    assert b.read_bytes() == before
    wide = tmp_path / "wide.pth"
    torch.save(RRDBNet(num_feat=12, num_block=1, num_grow_ch=4).state_dict(), wide)
    assert main(["interp", str(a), str(wide), "--alpha", "0.5", "-o", str(tmp_path / "o.pth")]) == 1
    assert "shape mismatch at key 'conv_first.weight'" in _error_line(capsys, "interp")
    with pytest.raises(SystemExit) as info:  # --alpha is required
        main(["interp", str(a), str(b), "-o", str(tmp_path / "o.pth")])
    assert info.value.code == 2


def test_weights_list_shows_status(cache, capsys) -> None:
    cache.mkdir()
    (cache / "RealESRGAN_x4plus.pth").write_bytes(b"placeholder")
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert rows["realesrgan-x4plus-pth"][1:4] == ["x4", "basicsr", "cached"]
    assert rows["realesrnet-x4plus"][3] == "not"  # "not cached"
    assert rows["esrgan-x4"][3] == "manual"
    assert rows["lab-gan-x4"][0] == "lab-gan-x4"
    assert str(cache) in out


def test_weights_fetch(cache, capsys) -> None:
    assert main(["weights", "fetch", "esrgan-x4"]) == 1
    assert str(cache / "RRDB_ESRGAN_x4.pth") in _error_line(capsys, "weights")
    assert main(["weights", "fetch", "no-such-model"]) == 1
    assert "unknown weights name" in _error_line(capsys, "weights")
    cache.mkdir()
    (cache / "RRDB_ESRGAN_x4.pth").write_bytes(b"placed by hand")
    assert main(["weights", "fetch", "esrgan-x4"]) == 0
    assert capsys.readouterr().out.strip() == str(cache / "RRDB_ESRGAN_x4.pth")
