"""`python -m export web FOLDER --out SITE`: a static site that translates in the browser with the
model folder (onnxruntime-web and SentencePiece's WebAssembly build; web/ holds its JavaScript).

SITE holds web/dist (index.html, app.js, ort/: the two onnxruntime-web files the page loads) and
model/ (config.json and the files it lists, checked by the Python runtime first, and by the page's
own SHA-256 check before it creates a session). Written beside SITE and put in place when complete.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from runtime.atomic import check_target, write_folder
from runtime.lock import exclusive, lock_path

WEB = Path(__file__).resolve().parents[1] / "web"
BUILD_HINT = "build it with `npm ci --prefix web && npm run build --prefix web`"


class WebExportError(Exception):
    """The site cannot be written; the message is one line."""


def assets(web: Path = WEB) -> Path:
    """web/dist, built (BUILD_HINT) and complete."""
    dist = web / "dist"
    needed = ("index.html", "app.js", "ort/ort-wasm-simd-threaded.mjs", "ort/ort-wasm-simd-threaded.wasm")
    missing = [name for name in needed if not (dist / name).is_file()]
    if missing:
        raise WebExportError(f"{dist}: the page is not built ({missing[0]} missing); {BUILD_HINT}")
    return dist


def export_web(folder: str | os.PathLike, out: str | os.PathLike, *, force: bool = False, web: Path = WEB) -> Path:
    """Writes the site; WebExportError (site untouched) if the folder or the page is not usable."""
    from runtime.model_format import CONFIG_FILE, ModelFolderError, open_folder

    folder, out = Path(folder), Path(out)
    try:
        config, _ = open_folder(folder, keep=())  # the runtime's own checks, every file's sha256 included
    except ModelFolderError as e:
        raise WebExportError(str(e)) from None
    dist = assets(web)
    with exclusive(lock_path(out, inside=False), f"--out {out}"):
        try:
            check_target(out, force)
        except FileExistsError as e:
            raise WebExportError(str(e)) from None

        def build(tmp: Path) -> None:
            shutil.copytree(dist, tmp, dirs_exist_ok=True)
            (tmp / "model").mkdir()
            for name in (CONFIG_FILE, *config.files):
                shutil.copyfile(folder / name, tmp / "model" / name)

        write_folder(out, build, force)
    return out
