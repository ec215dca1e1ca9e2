"""The training state of an unfinished run, in one file.

Weights and Adam's moments are tensors; the epoch, the history and every random generator's
state are JSON in the same safetensors file, so one atomic rename replaces all of it and a
killed run resumes exactly where it stopped. Under torchrun every process's random state is
kept (each rank draws its own dropout masks), and each rank restores its own.
"""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .distributed import on_processes, processes
from .errors import UserError
from .files import atomic_write
from .modelfile import (load_weights, model_tensors, read_safetensors, safetensors_header, tensors_sha256,
                        text_sha256, write_safetensors)
from .settings import identity


def _b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.cpu().numpy().tobytes()).decode()


def _unb64(s: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8)


def rng_state(shuffle_gen: torch.Generator) -> dict:
    """This process's random generators, as JSON."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "torch": _b64(torch.get_rng_state()),
        "cuda": [_b64(s) for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
        "shuffle": _b64(shuffle_gen.get_state()),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }


def set_rng_state(rng: dict, shuffle_gen: torch.Generator) -> None:
    torch.set_rng_state(_unb64(rng["torch"]))
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([_unb64(s) for s in rng["cuda"]])
    shuffle_gen.set_state(_unb64(rng["shuffle"]))
    np.random.set_state((rng["numpy"][0], np.array(rng["numpy"][1], dtype=np.uint32), *rng["numpy"][2:]))
    random.setstate((rng["python"][0], tuple(rng["python"][1]), rng["python"][2]))


def save_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer, epoch: int,
                    history: list[dict], rng: list[dict], settings: dict) -> None:
    """``rng``: one random state per process (one entry without torchrun); ``settings``: those
    of the run (``run_settings``), which a run resuming from it must have. The digests cover the
    tensors and the state, so that neither an edit nor another run's file is taken up."""
    tensors = {f"model.{k}": v for k, v in model_tensors(model).items()}
    opt_state = opt.state_dict()
    for i, state in opt_state["state"].items():
        for k, v in state.items():
            tensors[f"optimizer.{i}.{k}"] = v.detach().cpu().contiguous().reshape(v.shape)
    state = json.dumps({"epoch": epoch, "history": history, "param_groups": opt_state["param_groups"],
                        "rng": rng[0], "rank_rng": rng[1:], "settings": settings})
    meta = {"state": state, "state_sha256": text_sha256(state), "tensors_sha256": tensors_sha256(tensors)}
    atomic_write(path, lambda staged: write_safetensors(staged, tensors, meta))


def run_settings(model: nn.Module, cfg) -> dict:
    """What ties a checkpoint to its run: the settings that change its numbers (the seed among
    them), of its training and of its model, as JSON holds them. Under a constant schedule the
    epochs asked for change none of the epochs' numbers, only how many there are: they are left
    out, so that a run trained on for more epochs (``--extend``) resumes from its own state."""
    m = getattr(model, "config", None)  # (a fashionae model's; bench and tests train others too)
    used = {k: v for k, v in identity(m).items() if k not in m.unused()} if m is not None else {}
    train = {k: v for k, v in identity(cfg).items() if k != "epochs" or cfg.fitted_to_epochs}
    return json.loads(json.dumps({"train": train, "model": used}))


def checkpoint_epoch(path: Path) -> int:
    """The epochs a checkpoint holds, from its header alone (for ``study --plan``'s estimate);
    0 where there is none or it cannot be read: the run then trains from epoch 1, or says what
    is wrong with the file when it starts."""
    try:
        with open(path, "rb") as f:
            return int(json.loads(safetensors_header(f)[1]["state"])["epoch"])
    except Exception:
        return 0


FIX = "delete it to restart the run from scratch"


def read_checkpoint(path: Path, settings: dict, world: int = 1, fix: str = FIX) -> tuple[dict, dict]:
    """The checkpoint's tensors and state, once it is checked to be the run's with ``settings``
    (``run_settings``) on ``world`` processes: its digests, its settings, its processes; ``fix``:
    what to do where it is not. A run trained on (--extend) reads it before it makes its finished
    run unfinished again."""
    tensors, meta = read_safetensors(path, "checkpoint", fix)
    # written since checkpoints carry digests; older ones are checked by their structure only
    if ("tensors_sha256" in meta and tensors_sha256(tensors) != meta["tensors_sha256"]) or (
            "state_sha256" in meta and text_sha256(meta.get("state", "")) != meta["state_sha256"]):
        raise UserError(f"checkpoint {path} fails its checksum: it was modified or damaged; {fix}")
    try:
        state = json.loads(meta["state"])
        theirs = state.get("settings", settings)  # (checkpoints before 0.3.2 record none)
        for part in settings:
            for key in settings[part].keys() & theirs.get(part, {}).keys():  # (a setting of a later version: new)
                if theirs[part][key] != settings[part][key]:
                    raise UserError(f"checkpoint {path} is another run's ({part} {key} {theirs[part][key]!r} there, "
                                    f"{settings[part][key]!r} in this run); {fix}")
        if (written := len([state["rng"], *state.get("rank_rng", [])])) != world:
            raise UserError(f"checkpoint {path} was written by {processes(written)}, and this command runs {world}; "
                            f"resume it {on_processes(written)}")
        int(state["epoch"])  # (a number, or the file is damaged)
        return tensors, state
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"checkpoint {path} is damaged ({type(e).__name__}); {fix}") from None


def load_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer, shuffle_gen: torch.Generator,
                    settings: dict, rank: int = 0, world: int = 1,
                    checked: tuple[dict, dict] | None = None) -> tuple[int, list[dict]]:
    """Restore weights, optimizer and this rank's random state; return (epoch, history).
    ``settings``: the resuming run's (``run_settings``), which the checkpoint's must match;
    ``checked``: what ``read_checkpoint`` read of it already, not read again."""
    tensors, state = checked if checked is not None else read_checkpoint(path, settings, world)
    try:
        load_weights(model, tensors, path, prefix="model.")
        opt_state = {"state": {}, "param_groups": state["param_groups"]}
        for name, t in tensors.items():
            if name.startswith("optimizer."):
                _, i, k = name.split(".", 2)
                opt_state["state"].setdefault(int(i), {})[k] = t
        for g in opt_state["param_groups"]:
            g["betas"] = tuple(g["betas"])
        opt.load_state_dict(opt_state)
        # The fused kernel walks a parameter and its moments as flat buffers, so the moments
        # must share the parameter's memory layout (channels-last), not the file's.
        for group in opt.param_groups:
            for p in group["params"]:
                for k, v in opt.state[p].items():
                    if v.shape == p.shape:
                        opt.state[p][k] = torch.empty_like(p).copy_(v)
        set_rng_state([state["rng"], *state.get("rank_rng", [])][rank], shuffle_gen)
        return state["epoch"], state["history"]
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"checkpoint {path} is damaged ({type(e).__name__}); {FIX}") from None
