"""Load the model to score with: TorchScript, a torch.export program (.pt2), or a factory.

A factory is `package.module:function`, imported from the current folder or the installed
packages, called with no arguments, returning an nn.Module; `--weights` loads a state_dict into it.
"""

from __future__ import annotations

import importlib
import os
import sys
import zipfile
from pathlib import Path
from typing import Any

from labelaudit._deps import import_optional
from labelaudit.errors import InputError

torch = import_optional("torch")


def load_model(spec: str, weights: str | None = None) -> Any:
    """The model named by `spec`, on the CPU, in eval mode, with `weights` loaded when given."""
    path = Path(spec)
    if path.exists():
        if path.is_dir():
            raise InputError(f"--model '{spec}' is a folder; give a model file or module:factory.")
        model = _load_export(spec) if path.suffix.lower() == ".pt2" else _load_script(spec)
    elif ":" in spec and os.sep not in spec:
        model = _load_factory(spec)
    else:
        raise InputError(
            f"--model '{spec}' is neither an existing file nor 'package.module:factory'. Give a "
            "TorchScript file, a torch.export program (.pt2), or a factory function."
        )
    if weights is not None:
        _load_weights(model, weights, spec)
    if path.suffix.lower() != ".pt2":  # an exported program is traced already; no eval()
        model.eval()
    return model


SAVE_HOW = (
    "Save a model with torch.jit.script(model).save(path), export it with "
    "torch.export.save(torch.export.export(model, example), 'model.pt2'), or give "
    "'module:factory' with --weights for a state_dict."
)


def _load_script(path: str) -> Any:
    try:
        return torch.jit.load(path, map_location="cpu")
    except Exception as exc:  # torch raises RuntimeError, ValueError or pickle errors here
        raise InputError(
            f"--model '{path}' could not be loaded as TorchScript (torch.jit.load): "
            f"{_why_not(path, 'torchscript', exc)}. {SAVE_HOW}"
        ) from exc


def _load_export(path: str) -> Any:
    try:
        return torch.export.load(path).module()
    except Exception as exc:  # torch raises several types for a bad archive
        raise InputError(
            f"--model '{path}' could not be loaded as a torch.export program (torch.export.load): "
            f"{_why_not(path, 'export', exc)}. {SAVE_HOW}"
        ) from exc


def _load_factory(spec: str) -> Any:
    module_name, _, function_name = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # an import runs user code: any error is the user's to see
        raise InputError(
            f"--model '{spec}': the module '{module_name}' could not be imported "
            f"({type(exc).__name__}: {_first_line(exc)}). Run from the folder that holds it or "
            "install its package."
        ) from exc
    factory = getattr(module, function_name, None)
    if not callable(factory):
        raise InputError(f"--model '{spec}': '{module_name}' has no function '{function_name}'.")
    try:
        model = factory()
    except Exception as exc:  # the factory is user code
        raise InputError(
            f"--model '{spec}': calling {function_name}() failed ({type(exc).__name__}: "
            f"{_first_line(exc)})."
        ) from exc
    if not isinstance(model, torch.nn.Module):
        raise InputError(
            f"--model '{spec}': {function_name}() returned {type(model).__name__}, not a "
            "torch.nn.Module."
        )
    return model


def _load_weights(model: Any, weights: str, spec: str) -> None:
    if not hasattr(model, "load_state_dict"):
        raise InputError(f"--weights: the model '{spec}' cannot take a state_dict.")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # missing file, not a torch file, or pickled code
        raise InputError(
            f"--weights '{weights}' could not be read as a state_dict (torch.load of tensors "
            f"only): {_why_not(weights, 'state_dict', exc)}. Save the weights with "
            "torch.save(model.state_dict(), path)."
        ) from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    try:
        model.load_state_dict(state)
    except Exception as exc:  # missing or unexpected keys, shape mismatches
        raise InputError(
            f"--weights '{weights}' do not fit the model '{spec}': {_first_line(exc)}"
        ) from exc


def _archive_kind(path: str) -> str:
    """What a model file is, from its zip layout: 'torchscript', 'export', 'pickle' (written by
    torch.save), 'zip' (another archive) or 'not a zip'."""
    try:
        with zipfile.ZipFile(path) as archive:
            leaves = {name.split("/", 1)[-1] for name in archive.namelist()}
    except (OSError, zipfile.BadZipFile, ValueError):
        return "not a zip"
    if "constants.pkl" in leaves:
        return "torchscript"
    if "archive_format" in leaves:
        return "export"
    return "pickle" if "data.pkl" in leaves else "zip"


# What to tell the user, by what the file is and what it was loaded as.
_WHY = {
    "not a zip": "the file is not a zip archive, as files written by torch are; it may be "
    "truncated, corrupt or another kind of file",
    ("torchscript", "pickle"): "it was written by torch.save (a pickled nn.Module or a "
    "state_dict), not by TorchScript, and labelaudit does not unpickle models, which runs code",
    ("torchscript", "export"): "it is a torch.export program; give it the .pt2 extension",
    ("export", "torchscript"): "it is a TorchScript model; give it another extension than .pt2",
    ("export", "pickle"): "it was written by torch.save (a pickled nn.Module or a state_dict), "
    "not by torch.export.save",
    ("state_dict", "pickle"): "it holds pickled Python objects besides tensors (e.g. a whole "
    "model saved with torch.save(model)), and labelaudit loads tensors only: unpickling runs code",
    ("state_dict", "torchscript"): "it is a TorchScript model, not a state_dict; give it as "
    "--model instead",
    ("state_dict", "export"): "it is a torch.export program, not a state_dict; give it as "
    "--model instead",
}


def _why_not(path: str, wanted: str, exc: BaseException) -> str:
    """Why `path` did not load as `wanted`, in the user's terms: from the file's layout when it
    tells, else the first sentence of torch's message (the rest is advice for programmers)."""
    if isinstance(exc, FileNotFoundError) or not os.path.exists(path):
        return "the file does not exist"
    if os.path.isdir(path):
        return "it is a folder"
    kind = _archive_kind(path)
    if kind == "not a zip" and "Unsupported global" in str(exc):
        kind = "pickle"  # torch.save's legacy format: a pickle, not a zip
    return _WHY.get(kind) or _WHY.get((wanted, kind)) or first_sentence(exc)


def first_sentence(exc: BaseException) -> str:
    """The first sentence of an exception's message: torch's messages go on with advice meant
    for whoever calls torch (e.g. to load with weights_only=False), not for the user."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line.split(". ")[0].rstrip(". ")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
