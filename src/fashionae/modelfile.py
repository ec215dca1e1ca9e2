"""A trained model's file: safetensors (never pickle), with its settings and a digest of every
tensor in the metadata, so that ``load_model`` rebuilds the model from the file alone and
refuses one that was damaged or edited."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from .errors import UserError
from .models import ModelConfig, build_model

MODEL_FORMAT = "fashionae-model-1"
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin")


def is_pickle(start: bytes) -> bool:
    """Whether a file's first 9 bytes are torch.save's (a zip archive, or a bare pickle of protocol
    2 to 5), not a safetensors file's: its header's length in 8 bytes (the last four 0 for any
    header under 4 GiB), then the header's "{"."""
    safetensors = start[4:8] == b"\0\0\0\0" and start[8:9] == b"{"
    return start[:4] == b"PK\x03\x04" or (start[:1] == b"\x80" and start[1:2] in b"\x02\x03\x04\x05"
                                           and len(start) > 1 and not safetensors)


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """A digest of every tensor's name, dtype, shape and bytes, in name order (read in place)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def write_safetensors(path: str, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """A safetensors file, its tensors written from where they lie (``save`` would build the whole
    file in memory, twice: as much again as the weights and Adam's moments it holds), the keys of
    its JSON header in sorted order. The library writes the metadata in an order of its own that
    changes from call to call, so the same model gave files of different checksums
    (``RunFolder.model_sha256``, which a classifier records of its encoder). The sorted header is
    written over the library's, padded with spaces to its length (as the library pads it)."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file
    try:
        save_file(tensors, path, metadata=metadata)
    except SafetensorError as e:  # the library's I/O error (a full disk: "... (os error 28)") as Python's
        code = re.search(r"\(os error (\d+)\)", str(e))
        raise OSError(int(code[1]) if code else errno.EIO, os.strerror(int(code[1])) if code else str(e)) from e
    with open(path, "r+b") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.dumps(json.loads(f.read(n)), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        if len(header) > n:  # (never seen: the same JSON, reordered, its text as the library writes it, UTF-8)
            raise ValueError(f"{path}: safetensors header grew when sorted ({len(header)} > {n} bytes)")
        f.seek(8)
        f.write(header + b" " * (n - len(header)))


def model_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def write_model_file(path: str, model: nn.Module) -> None:
    """model.safetensors: the weights, the model's settings and their digests."""
    tensors = model_tensors(model)
    settings = json.dumps(asdict(model.config))
    meta = {"format": MODEL_FORMAT, "model_config": settings,
            "weights_sha256": tensors_sha256(tensors), "settings_sha256": text_sha256(settings)}
    write_safetensors(path, tensors, meta)


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def read_safetensors(path: Path, what: str, fix: str = "train it again") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file; UserError for anything unreadable, ending
    with ``fix``, what to do about it."""
    from safetensors.torch import load
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise UserError(f"{path} looks like a PyTorch pickle; fashionae never loads pickles, since "
                        "unpickling runs code from the file: use a fashionae run folder "
                        "(model.safetensors)")
    if not path.is_file():
        raise UserError(f"{what} {path} is missing; train the model first or check the path")
    try:
        # read, not mapped: safetensors' own open takes UTF-8 paths alone (a folder named in
        # another encoding was called tampered), and a map holds a replaced checkpoint's disk
        with open(path, "rb") as f:
            if is_pickle(start := f.read(9)):  # (named .safetensors: a renamed torch.save file)
                kind = "a zip archive (torch.save's format)" if start[:2] == b"PK" else "a pickle (torch.save's)"
                raise UserError(f"{what} {path} is {kind}, not a safetensors file; fashionae never loads pickles, "
                                f"since unpickling runs code from the file: {fix}")
            f.seek(0)
            head, meta = safetensors_header(f)
            data = head + f.read()
    except OSError as e:
        raise UserError(f"cannot read {what} {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise UserError(f"{what} {path} is not a valid safetensors file ({e}); it is truncated or tampered: "
                        f"{fix}") from None
    try:
        tensors = load(data)
    except Exception as e:  # safetensors raises its own error types
        raise UserError(f"{what} {path} is not a valid safetensors file ({str(e)[:80]}); "
                        f"it is truncated or tampered: {fix}") from None
    return tensors, meta


def safetensors_header(f) -> tuple[bytes, dict[str, str]]:
    """A safetensors file's header, read from the start of ``f`` (an 8-byte little-endian length,
    then that many bytes of JSON: each tensor's place, and the metadata), and its metadata;
    ValueError where the file's size is not the one its header gives (cut short, or grown)."""
    first = f.read(8)
    n = int.from_bytes(first, "little")
    size = os.fstat(f.fileno()).st_size
    if len(first) < 8 or 8 + n > size:
        raise ValueError("its header is cut short")
    head = first + f.read(n)
    try:
        header = json.loads(head[8:])
    except RecursionError:  # (brackets nested past Python's stack: a hostile file)
        raise ValueError("its header is nested too deeply") from None
    if not isinstance(header, dict):
        raise ValueError("its header is not a table")
    meta = header.pop("__metadata__", None) or {}
    if not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
        raise ValueError("its metadata is not a table of text")
    try:
        end = max((int(t["data_offsets"][1]) for t in header.values()), default=0)
    except (TypeError, KeyError, IndexError, ValueError, OverflowError):  # (Overflow: an offset of 1e400)
        raise ValueError("its header does not place its tensors") from None
    if 8 + n + end != size:
        raise ValueError(f"{size:,} bytes where its header gives {8 + n + end:,}")
    return head, meta


def load_model(path: str | Path) -> nn.Module:
    """Rebuild a model from its file alone, checking every tensor against its settings."""
    path = Path(path)
    tensors, meta = read_safetensors(path, "model file")
    if meta.get("format") != MODEL_FORMAT:
        raise UserError(f"{path} is not a fashionae model file (no {MODEL_FORMAT} metadata)")
    try:
        cfg = ModelConfig.from_dict(json.loads(meta["model_config"]))
    except (KeyError, TypeError, json.JSONDecodeError, RecursionError) as e:  # (RecursionError: nested past the stack)
        raise UserError(f"{path} has damaged model settings in its metadata") from e
    except UserError as e:  # settings this version does not know, or out of range
        raise UserError(f"{path} holds model settings this fashionae cannot use ({e}); it was written "
                        "by another version, or edited") from None
    if tensors_sha256(tensors) != meta.get("weights_sha256"):
        raise UserError(f"{path} fails its weights checksum: the file was modified or damaged; "
                        "train it again")
    # the settings decide how the weights are used (dropout, the head): an edit is tampering too.
    # Files written before settings_sha256 existed carry none and are checked on weights only.
    if "settings_sha256" in meta and text_sha256(meta["model_config"]) != meta["settings_sha256"]:
        raise UserError(f"{path} fails its settings checksum: the model settings in its metadata "
                        "were modified; train it again")
    model = build_model(cfg)
    load_weights(model, tensors, path)
    return model.eval()


def load_weights(model: nn.Module, tensors: dict[str, torch.Tensor], source: Path | str,
                 prefix: str = "") -> None:
    """Copy ``tensors`` (keys under ``prefix``) into ``model``, checking names, shapes, dtypes."""
    expected = model.state_dict()
    got = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    missing, extra = set(expected) - set(got), set(got) - set(expected)
    if missing or extra:
        raise UserError(f"{source} does not match the model's architecture "
                        f"(missing: {sorted(missing)[:3]}, unexpected: {sorted(extra)[:3]})")
    for k, v in expected.items():
        if got[k].shape != v.shape or got[k].dtype != v.dtype:
            raise UserError(f"{source}: tensor {k} is {got[k].dtype}{list(got[k].shape)}, the "
                            f"architecture needs {v.dtype}{list(v.shape)}")
    model.load_state_dict(got)
