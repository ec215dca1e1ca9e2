"""fashionae: train, check and reuse convolutional autoencoders on Fashion-MNIST."""

__version__ = "0.3.4"


def load(run_dir):
    """A trained run folder, ready to apply to images: ``reconstruct``, ``embed``, ``predict``."""
    from .inference import LoadedRun
    from .studyfolder import refuse_a_study_folder
    refuse_a_study_folder(run_dir)
    return LoadedRun(run_dir)
