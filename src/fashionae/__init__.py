"""fashionae: train, check and reuse convolutional autoencoders on Fashion-MNIST."""

__version__ = "0.3.31"


def load(run_dir, precision: str = "auto"):
    """A trained run folder, ready to apply to images: ``reconstruct``, ``embed``, ``predict``
    (``inference.LoadedRun``; ``precision``: auto, the run's own where this CPU runs it natively,
    fp32 or bf16)."""
    from .errors import UserError
    from .inference import LoadedRun
    from .studyfolder import refuse_a_study_folder
    if isinstance(run_dir, str) and not run_dir.strip():  # (not the folder it runs in: an unset variable, likely)
        raise UserError("the run folder is empty; give a run's folder (\".\" for the folder you are in)")
    refuse_a_study_folder(run_dir)
    return LoadedRun(run_dir, precision)


def __getattr__(name):
    """``fashionae.images``, ``fashionae.data``, …: a module of the package, imported when first
    named (``import fashionae`` itself loads no torch); ``fashionae.UserError``, what bad input
    raises (its message says what is wrong and what to do)."""
    import importlib.util
    if name == "UserError":
        from .errors import UserError
        return UserError
    if name.isidentifier() and not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
