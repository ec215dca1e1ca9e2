"""fashionae: train, check and reuse convolutional autoencoders on Fashion-MNIST."""

__version__ = "0.1.0"
