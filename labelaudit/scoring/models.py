"""Load the model to score with: TorchScript, a torch.export program (.pt2), or a factory.

A factory is `package.module:function`, imported from the current folder or the installed
packages, called with no arguments, returning an nn.Module; `--weights` loads a state_dict into it.
"""

from __future__ import annotations

import importlib
import os
import sys
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


def _load_script(path: str) -> Any:
    try:
        return torch.jit.load(path, map_location="cpu")
    except Exception as exc:  # torch raises RuntimeError, ValueError or pickle errors here
        raise InputError(
            f"--model '{path}' could not be loaded as TorchScript (torch.jit.load): "
            f"{_first_line(exc)}. Save the model with torch.jit.script(model).save(path), export "
            "it with torch.export.save(program, 'model.pt2'), or give 'module:factory' with "
            "--weights for a state_dict (a pickled nn.Module is not loaded: it runs code)."
        ) from exc


def _load_export(path: str) -> Any:
    try:
        return torch.export.load(path).module()
    except Exception as exc:  # torch raises several types for a bad archive
        raise InputError(
            f"--model '{path}' could not be loaded as a torch.export program (torch.export.load): "
            f"{_first_line(exc)}. Save it with torch.export.save(torch.export.export(...), path)."
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
            f"--weights '{weights}' could not be read as a state_dict (torch.load, "
            f"weights_only=True): {_first_line(exc)}."
        ) from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    try:
        model.load_state_dict(state)
    except Exception as exc:  # missing or unexpected keys, shape mismatches
        raise InputError(
            f"--weights '{weights}' do not fit the model '{spec}': {_first_line(exc)}"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
