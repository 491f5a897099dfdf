"""Seeded model builders for the lab's problems.

Every layer gets its own initializer seeded from ``seed``, so two builds with the same seed on
the same backend have bit-identical weights whatever the global random state is. The models are
returned uncompiled: the experiment chooses the optimiser, loss and metrics.
"""

from __future__ import annotations

import keras
from keras import layers


def _seeded(seed: int, index: int, kind: str = "glorot_uniform") -> keras.initializers.Initializer:
    """Layer ``index``'s kernel initializer, seeded independently of the other layers."""
    config = {"class_name": kind, "config": {"seed": seed * 1000 + index}}
    return keras.initializers.get(config)


def mnist_mlp(seed: int = 0, hidden_units: int = 128) -> keras.Model:
    """Notebook 003's MLP: 784 -> Dense(128, relu) -> Dense(10, softmax)."""
    return keras.Sequential(
        [
            keras.Input(shape=(784,)),
            layers.Dense(hidden_units, activation="relu", kernel_initializer=_seeded(seed, 0)),
            layers.Dense(10, activation="softmax", kernel_initializer=_seeded(seed, 1)),
        ],
        name="mnist_mlp",
    )


def mnist_cnn(seed: int = 0) -> keras.Model:
    """A small MNIST CNN: two conv(3x3) + max-pool blocks (32, 64 filters) -> Dense(10, softmax)."""
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu", kernel_initializer=_seeded(seed, 0)),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu", kernel_initializer=_seeded(seed, 1)),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(10, activation="softmax", kernel_initializer=_seeded(seed, 2)),
        ],
        name="mnist_cnn",
    )


def moons_net(seed: int = 0) -> keras.Model:
    """Notebook 004's net: 2 -> Dense(16, relu) -> Dense(8, relu) -> Dense(2, softmax)."""
    return keras.Sequential(
        [
            keras.Input(shape=(2,)),
            layers.Dense(16, activation="relu", kernel_initializer=_seeded(seed, 0)),
            layers.Dense(8, activation="relu", kernel_initializer=_seeded(seed, 1)),
            layers.Dense(2, activation="softmax", kernel_initializer=_seeded(seed, 2)),
        ],
        name="moons_net",
    )


def linear_regression(seed: int = 0) -> keras.Model:
    """One unit, y = w x + b: the model of the notebooks' batch/stochastic/mini-batch study."""
    return keras.Sequential(
        [
            keras.Input(shape=(1,)),
            layers.Dense(1, kernel_initializer=_seeded(seed, 0, "random_normal")),
        ],
        name="linear_regression",
    )


def digits_mlp(seed: int = 0, hidden_units: int = 64) -> keras.Model:
    """scikit-learn's 8x8 digits: 64 -> Dense(64, relu) -> Dense(10, softmax)."""
    return keras.Sequential(
        [
            keras.Input(shape=(64,)),
            layers.Dense(hidden_units, activation="relu", kernel_initializer=_seeded(seed, 0)),
            layers.Dense(10, activation="softmax", kernel_initializer=_seeded(seed, 1)),
        ],
        name="digits_mlp",
    )


def mnist_autoencoder(seed: int = 0, code_units: int = 32) -> keras.Model:
    """A dense MNIST autoencoder: 784 -> 128 -> 32 -> 128 -> 784 (sigmoid), for mean squared error."""
    return keras.Sequential(
        [
            keras.Input(shape=(784,)),
            layers.Dense(128, activation="relu", kernel_initializer=_seeded(seed, 0)),
            layers.Dense(code_units, activation="relu", kernel_initializer=_seeded(seed, 1)),
            layers.Dense(128, activation="relu", kernel_initializer=_seeded(seed, 2)),
            layers.Dense(784, activation="sigmoid", kernel_initializer=_seeded(seed, 3)),
        ],
        name="mnist_autoencoder",
    )


@keras.saving.register_keras_serializable(package="lab")
class QuadraticResidual(layers.Layer):
    """R (θ − x) for a fixed matrix R and trainable θ (initialised to ones): the residual of the
    noisy quadratic ½ (θ − x)ᵀ RᵀR (θ − x) (``lab.datasets.noisy_quadratic``)."""

    def __init__(self, hessian_sqrt, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hessian_sqrt = keras.ops.convert_to_numpy(hessian_sqrt).astype("float32")

    def build(self, input_shape) -> None:
        self.theta = self.add_weight(shape=(self.hessian_sqrt.shape[0],), initializer="ones", name="theta")

    def call(self, x):
        return keras.ops.matmul(self.theta - x, keras.ops.transpose(self.hessian_sqrt))

    def get_config(self) -> dict:
        return {**super().get_config(), "hessian_sqrt": self.hessian_sqrt.tolist()}


def noisy_quadratic(seed: int = 0, dimension: int = 100) -> keras.Model:
    """The noisy quadratic's model: one trainable vector θ, output R (θ − x). ``seed`` is unused:
    θ starts at ones whatever the seed (DeepOBS's start is fixed too); the noise comes from the
    data order."""
    from lab.datasets import quadratic_hessian_sqrt

    return keras.Sequential(
        [keras.Input(shape=(dimension,)), QuadraticResidual(quadratic_hessian_sqrt(dimension), name="quadratic")],
        name="noisy_quadratic",
    )


@keras.saving.register_keras_serializable(package="lab")
class PositionEmbedding(layers.Layer):
    """Adds a learned vector per position to a (batch, length, width) input: x + P[:length]."""

    def __init__(self, max_length: int, initializer="glorot_uniform", **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_length = int(max_length)
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape) -> None:
        self.positions = self.add_weight(
            shape=(self.max_length, input_shape[-1]), initializer=self.initializer, name="positions"
        )

    def call(self, x):
        length = keras.ops.shape(x)[1]
        return x + keras.ops.cast(self.positions[:length], x.dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "max_length": self.max_length,
                "initializer": keras.initializers.serialize(self.initializer)}


def char_transformer(
    seed: int = 0, vocabulary_size: int = 78, context: int = 64, width: int = 64, depth: int = 2, heads: int = 4
) -> keras.Model:
    """A decoder-only transformer character language model (GPT-style, pre-norm).

        x = token_embedding(c) + position_embedding           (batch, context, width)
        depth x:  x = x + CausalSelfAttention(LayerNorm(x))   (heads heads of width / heads)
                  x = x + Dense(width)(gelu(Dense(4 width)(LayerNorm(x))))
        p = softmax(Dense(vocabulary_size)(LayerNorm(x)))     next-character probabilities

    Input: int codes of shape (batch, context); output (batch, context, vocabulary_size), the
    distribution of the character after each position, which sees only itself and earlier ones
    (``MultiHeadAttention(..., use_causal_mask=True)``). Every kernel, the query, key, value and
    output projections of each attention layer included, has its own seed; the read-out starts
    at zero, so the untrained loss is ln(vocabulary_size) exactly.
    """
    if width % heads:
        raise ValueError(f"width must be a multiple of heads, got width={width}, heads={heads}")
    index = iter(range(10_000))
    normal = lambda: _seeded(seed, next(index), "random_normal")  # noqa: E731 - embeddings' N(0, 0.05)
    tokens = keras.Input(shape=(context,), dtype="int32")
    x = layers.Embedding(vocabulary_size, width, embeddings_initializer=normal(), name="token_embedding")(tokens)
    x = PositionEmbedding(context, normal(), name="position_embedding")(x)
    attentions = []
    for block in range(depth):
        h = layers.LayerNormalization(epsilon=1e-5, name=f"block{block}_attention_norm")(x)
        attention = layers.MultiHeadAttention(heads, width // heads, name=f"block{block}_attention")
        attentions.append(attention)
        x = layers.Add()([x, attention(h, h, use_causal_mask=True)])
        h = layers.LayerNormalization(epsilon=1e-5, name=f"block{block}_mlp_norm")(x)
        h = layers.Dense(4 * width, activation="gelu", kernel_initializer=_seeded(seed, next(index)))(h)
        h = layers.Dense(width, kernel_initializer=_seeded(seed, next(index)))(h)
        x = layers.Add()([x, h])
    x = layers.LayerNormalization(epsilon=1e-5, name="final_norm")(x)
    # a zero read-out: the untrained model predicts every character with 1 / vocabulary_size
    outputs = layers.Dense(vocabulary_size, activation="softmax", kernel_initializer="zeros", name="next_character")(x)
    model = keras.Model(tokens, outputs, name="char_transformer")
    # MultiHeadAttention gives its four projections copies of one initializer, which with a seed
    # would make them equal: each gets its own seeded values instead
    for attention in attentions:
        for projection in (attention.query_dense, attention.key_dense, attention.value_dense, attention.output_dense):
            kernel = projection.kernel
            kernel.assign(_seeded(seed, next(index))(kernel.shape, kernel.dtype))
    return model


def _residual_block(x, filters: int, stride: int, seed: int, index) -> "keras.KerasTensor":
    """conv-BN-relu-conv-BN plus the input (a strided 1x1 conv when the shape changes), relu."""
    shortcut = x
    h = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False,
                      kernel_initializer=_seeded(seed, next(index), "he_normal"))(x)
    h = layers.Activation("relu")(layers.BatchNormalization()(h))
    h = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                      kernel_initializer=_seeded(seed, next(index), "he_normal"))(h)
    h = layers.BatchNormalization()(h)
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False,
                                 kernel_initializer=_seeded(seed, next(index), "he_normal"))(x)
        shortcut = layers.BatchNormalization()(shortcut)
    return layers.Activation("relu")(layers.Add()([h, shortcut]))


def cifar_resnet(seed: int = 0, widths: tuple[int, ...] = (16, 32, 64), classes: int = 10) -> keras.Model:
    """A small ResNet for 32x32x3 images (He et al. 2016's CIFAR layout, one block per stage).

        conv3x3(widths[0])-BN-relu -> a residual block per width (stride 2 from the second on:
        32 -> 16 -> 8) -> global average pooling -> Dense(classes, softmax)

    Input: float images (batch, 32, 32, 3) scaled to [0, 1]. The default has about 78,000 weights.
    """
    index = iter(range(10_000))
    images = keras.Input(shape=(32, 32, 3))
    x = layers.Conv2D(widths[0], 3, padding="same", use_bias=False,
                      kernel_initializer=_seeded(seed, next(index), "he_normal"))(images)
    x = layers.Activation("relu")(layers.BatchNormalization()(x))
    for stage, filters in enumerate(widths):
        x = _residual_block(x, filters, 1 if stage == 0 else 2, seed, index)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(classes, activation="softmax", kernel_initializer=_seeded(seed, next(index)))(x)
    return keras.Model(images, outputs, name="cifar_resnet")
