"""``esrgan-lab upscale``: super-resolve image files and folders.

Each input file is read with :func:`esrgan_lab.data.images.read_image` (gray, BGR, BGRA;
8- or 16-bit), upscaled with :func:`esrgan_lab.inference.upscale.upscale` and written atomically to
``OUTDIR/<stem><suffix>.<ext>``. Output names never collide with an input or with each
other: when they would, ``-2``, ``-3``, ... is appended to the stem. A file that fails
(unreadable, corrupt, not an image, too large without tiling) prints one line on stderr;
the remaining files are still processed and the exit code is 1 at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import ConfigError, EsrganLabError

_EXTS = ("auto", "png", "jpg", "webp", "tif", "bmp")


def _tile_arg(value: str) -> int | str | None:
    if value.lower() == "auto":
        return "auto"
    if value.lower() in ("0", "none", "off"):
        return None
    try:
        tile = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, 'auto' or 0: {value!r}") from None
    if tile < 0:
        raise argparse.ArgumentTypeError(f"tile must be >= 0, got {tile}")
    return tile or None


def _positive_float(value: str) -> float:
    try:
        f = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not f > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return f


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "upscale",
        help="super-resolve image files or folders",
        description="Upscale images with an RRDBNet (ESRGAN) model. Gray, BGR and BGRA "
        "images, 8- and 16-bit, keep their channels and depth. Inputs are never overwritten.",
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="image files or folders (folders: their image files, not recursive)",
    )
    p.add_argument(
        "-o", "--output", required=True, metavar="OUTDIR", help="output folder (created if missing)"
    )
    p.add_argument(
        "--weights",
        default=None,
        metavar="NAME|PATH",
        help="registry name, checkpoint file, .onnx file or OpenVINO IR folder (e.g. from "
        "`esrgan-lab quantize`); default: the best GAN weights on disk (esrgan-x4, then "
        "lab-gan-x4)",
    )
    p.add_argument(
        "--tile",
        type=_tile_arg,
        default="auto",
        metavar="N|auto",
        help="tile side in input pixels, 0 for none, or 'auto' (default): whole images that "
        "fit the memory budget run untiled, larger ones are tiled to fit it",
    )
    p.add_argument(
        "--tile-pad",
        type=int,
        default=10,
        metavar="N",
        help="context pixels around each tile (default 10)",
    )
    p.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        metavar="N",
        help="with --tile 0, refuse inputs with more pixels than this (default: no limit)",
    )
    p.add_argument(
        "--scale-out",
        type=_positive_float,
        default=None,
        metavar="F",
        help="resize the result to F x the input size (Lanczos up, area down)",
    )
    p.add_argument(
        "--alpha",
        choices=("model", "bicubic"),
        default="model",
        help="how alpha is upscaled (default: through the model)",
    )
    p.add_argument(
        "--dtype",
        choices=("fp32", "bf16", "fp16"),
        default="fp32",
        help="compute precision (fp16 needs CUDA; default fp32)",
    )
    p.add_argument(
        "--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps"
    )
    p.add_argument(
        "--backend",
        choices=("auto", "torch", "onnxruntime"),
        default="auto",
        help="engine: onnxruntime (CPU, fp32; ~2x faster than torch there) or torch; "
        "auto (default) = onnxruntime on the CPU in fp32, else torch. The first "
        "onnxruntime run of a model exports it to ONNX (seconds; ~15 s for the 23-block "
        "ESRGAN) and caches it under $ESRGAN_LAB_WEIGHTS/onnx for later runs",
    )
    p.add_argument(
        "--suffix", default="_x4", help="added to each output stem (default _x4; use '' for none)"
    )
    p.add_argument(
        "--ext",
        choices=_EXTS,
        default="auto",
        help="output format; auto keeps the input's, switching to png when it "
        "cannot hold 16-bit or alpha data",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
    return p


def collect_inputs(items: list[str]) -> list[Path]:
    """Expand folders (non-recursive, image extensions) and drop duplicate files.

    Missing paths are kept so that reading them reports the error per file.
    """
    from ..data.images import is_image_file

    found: list[Path] = []
    seen: set[Path] = set()
    for item in items:
        path = Path(item)
        files = (
            sorted(f for f in path.iterdir() if f.is_file() and is_image_file(f))
            if path.is_dir()
            else [path]
        )
        for f in files:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                found.append(f)
    return found


def _output_ext(input_path: Path, choice: str) -> str:
    if choice != "auto":
        return "." + choice
    ext = input_path.suffix.lower()
    return ext if ext else ".png"


def plan_outputs(inputs: list[Path], outdir: Path, suffix: str, ext: str) -> list[Path]:
    """One output path per input: ``<stem><suffix><ext>`` made unique.

    A name is taken when it is an input file or already planned for another input; then
    ``-2``, ``-3``, ... is appended to the stem. With ``ext="auto"`` the extension here
    is the input's; :func:`run` may switch it to ``.png`` when the format cannot store
    the result, and re-checks uniqueness then.
    """
    taken = {os.path.normcase(str(p.resolve())) for p in inputs}
    outputs: list[Path] = []
    for path in inputs:
        outputs.append(_unique(outdir, f"{path.stem}{suffix}", _output_ext(path, ext), taken))
    return outputs


def _unique(outdir: Path, stem: str, ext: str, taken: set[str]) -> Path:
    candidate = outdir / f"{stem}{ext}"
    n = 1
    while os.path.normcase(str(candidate.resolve())) in taken:
        n += 1
        candidate = outdir / f"{stem}-{n}{ext}"
    taken.add(os.path.normcase(str(candidate.resolve())))
    return candidate


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ..data.images import can_store, fit_to_format, read_image, write_image
    from ..inference.upscale import (
        pick_device,
        prepare_model,
        resize_output,
        resolve_backend,
        resolve_dtype,
        upscale,
    )

    if args.tile_pad < 0:
        raise ConfigError(f"--tile-pad must be >= 0, got {args.tile_pad}")
    inputs = collect_inputs(args.inputs)
    if not inputs:
        raise ConfigError("no image files found in " + ", ".join(args.inputs))
    outdir = Path(args.output)
    if outdir.exists() and not outdir.is_dir():
        raise ConfigError(f"{outdir}: output exists and is not a folder")

    from ..inference.engines import is_compiled, load_engine
    from ..weights.loading import best_available_weights

    weights = args.weights or best_available_weights("gan")
    if weights is None:
        raise ConfigError(
            "no weights on disk: pass --weights NAME|PATH (see `esrgan-lab weights list`)"
        )

    model = load_engine(weights)
    dev = pick_device(args.device)
    # Resolved once, so a bad combination (e.g. onnxruntime + bf16) is one error, not
    # one per file.
    backend = resolve_backend(args.backend, dev, resolve_dtype(args.dtype, dev))
    if backend == "torch" and not is_compiled(model):
        # Prepare (copy to device / dtype / channels_last) once for all images.
        model = prepare_model(model, dev, args.dtype)
    device = dev
    outdir.mkdir(parents=True, exist_ok=True)

    outputs = plan_outputs(inputs, outdir, args.suffix, args.ext)
    taken = {os.path.normcase(str(p.resolve())) for p in [*inputs, *outputs]}
    progress = not args.quiet
    failures = 0
    # disable=None: bars only on a terminal, so redirected stderr holds just the errors.
    bar = tqdm(
        list(zip(inputs, outputs)),
        desc="images",
        unit="img",
        disable=None if progress else True,
        file=sys.stderr,
    )
    for src, dst in bar:
        try:
            image = read_image(src)
            h, w = image.shape[:2]
            if args.tile is None and args.max_pixels and h * w > args.max_pixels:
                raise ConfigError(
                    f"{src}: {w}x{h} = {h * w} pixels is more than --max-pixels "
                    f"{args.max_pixels} for untiled inference; use --tile auto (or --tile N)"
                )
            sr = upscale(
                image,
                model,
                tile=args.tile,
                tile_pad=args.tile_pad,
                dtype=args.dtype,
                device=device,
                alpha=args.alpha,
                progress=not bar.disable,
                backend=backend,
            )
            if args.scale_out is not None:
                sr = resize_output(
                    sr, max(1, round(h * args.scale_out)), max(1, round(w * args.scale_out))
                )
            if args.ext == "auto" and not can_store(sr, dst.suffix):
                # e.g. a .jpg input gave a 16-bit or alpha result: keep it lossless in png
                taken.discard(os.path.normcase(str(dst.resolve())))
                dst = _unique(outdir, dst.stem, ".png", taken)
            write_image(dst, fit_to_format(sr, dst.suffix), protect=inputs)
        except (EsrganLabError, OSError, MemoryError) as exc:
            failures += 1
            msg = str(exc) if isinstance(exc, EsrganLabError) else f"{src}: {exc!r}"
            tqdm.write(f"esrgan-lab upscale: error: {msg}", file=sys.stderr)
    return 1 if failures else 0
