"""Model definitions: a small CNN backbone for 8x8 digits, and the heads put on it.

The backbone is a nested ``keras.Model`` named ``"backbone"`` (its layers are ``backbone_*``), so
a model built on it can take it whole from a trained model: ``base.get_layer("backbone")``.
Models take raw pixel values (0..255, as ``image_classification/digits`` stores them) and do their
own rescaling, so a loaded model needs no preprocessing code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

BACKBONE = "backbone"
IMAGE_SHAPE = (8, 8, 1)
NUM_CLASSES = 10


def build_backbone(embedding_dim: int = 64) -> keras.Model:
    """The feature extractor: pixels (8x8x1, 0..255) -> an ``embedding_dim`` feature vector."""
    import keras
    from keras import layers

    inputs = keras.Input(IMAGE_SHAPE, name="backbone_input")
    x = layers.Rescaling(1.0 / 255, name="backbone_rescale")(inputs)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="backbone_conv1")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu", name="backbone_conv2")(x)
    x = layers.MaxPooling2D(2, name="backbone_pool")(x)
    x = layers.Flatten(name="backbone_flatten")(x)
    x = layers.Dense(embedding_dim, activation="relu", name="backbone_embedding")(x)
    return keras.Model(inputs, x, name=BACKBONE)


def build_digits_cnn(dropout: float = 0.3) -> keras.Model:
    """``digits-cnn``: the backbone and a 10-way softmax head (digit 0..9)."""
    import keras
    from keras import layers

    inputs = keras.Input(IMAGE_SHAPE, name="image")
    features = build_backbone()(inputs)
    x = layers.Dropout(dropout, name="head_dropout")(features)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs, name="digits_cnn")


def backbone_of(model: keras.Model) -> keras.Model:
    """The nested backbone of a model built here (raises ``ValueError`` if it has none)."""
    try:
        return model.get_layer(BACKBONE)
    except ValueError as e:
        raise ValueError(
            f"model {model.name!r} has no layer named {BACKBONE!r}; the base model must be one "
            "built by src.zoo.models (e.g. digits-cnn)"
        ) from e


def build_digits_parity(base: keras.Model, hidden: int = 32, dropout: float = 0.3) -> keras.Model:
    """``digits-parity``: ``base``'s backbone (the same layer, its trained weights, frozen) and a
    new head, a ``hidden``-unit ReLU layer and one sigmoid unit (probability that the digit is
    odd). Parity is not linear in features trained for digit identity: a linear head reaches
    about 0.93 test accuracy where this one reaches 0.99.

    Unfreeze with ``backbone_of(model).trainable = True`` and recompile to fine-tune it too.
    """
    import keras
    from keras import layers

    backbone = backbone_of(base)
    backbone.trainable = False
    inputs = keras.Input(IMAGE_SHAPE, name="image")
    # training=False keeps the backbone in inference mode even when unfrozen later (it has no
    # BatchNorm today, but a backbone with one must not update its statistics on the new task).
    features = backbone(inputs, training=False)
    x = layers.Dropout(dropout, name="parity_dropout")(features)
    x = layers.Dense(hidden, activation="relu", name="parity_hidden")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="parity_head")(x)
    return keras.Model(inputs, outputs, name="digits_parity")
