"""A problem of a user's own: scikit-learn's breast cancer data and a small MLP."""
import keras
import numpy as np

from lab.datasets import Split
from lab.problems import Problem


def load_cancer() -> Split:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    x, y = load_breast_cancer(return_X_y=True)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    return Split(x_train.astype(np.float32), y_train.astype(np.int32), x_test.astype(np.float32), y_test.astype(np.int32))


def cancer_mlp(seed: int) -> keras.Model:
    return keras.Sequential([
        keras.Input(shape=(30,)),
        keras.layers.Dense(16, activation="relu", kernel_initializer=keras.initializers.GlorotUniform(seed)),
        keras.layers.Dense(2, activation="softmax", kernel_initializer=keras.initializers.GlorotUniform(seed + 1)),
    ])


PROBLEM = Problem(name="cancer", data=load_cancer, model=cancer_mlp, loss="sparse_categorical_crossentropy",
                  metrics=("accuracy",), epochs=5, batch_size=32, target=0.95,
                  description="breast cancer MLP 30-16-2, batch 32, 5 epochs")
