"""fashionae: train, check and reuse convolutional autoencoders on Fashion-MNIST."""

__version__ = "0.1.0"


def load(run_dir):
    """A trained run folder, ready to apply to images: ``reconstruct``, ``embed``, ``predict``."""
    from .images import load as _load
    return _load(run_dir)
