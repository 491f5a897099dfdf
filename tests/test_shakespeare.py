"""The Shakespeare language-model problem: the corpus's checksum, the block split, the model on
every backend, and a loss derived by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiments import compare_optimizers
from experiments.cli import run_main
from lab import datasets, metrics, models
from lab.problems import (
    PROBLEMS,
    SHAKESPEARE_BLOCK,
    protocol_view,
    shakespeare_blocks,
    shakespeare_split,
)

pytestmark = pytest.mark.backend_agnostic
CORPUS_LENGTH = 4_788_417  # characters of the verified corpus (lab.datasets.SHAKESPEARE_SHA256)


@pytest.fixture(scope="module")
def corpus() -> str:
    return datasets.load_shakespeare()


def test_a_corpus_with_one_character_changed_is_refused_naming_the_file_and_the_fix(corpus, tmp_path):
    assert len(corpus) == CORPUS_LENGTH and len(set(corpus)) == 78
    altered = tmp_path / "shakespeare.txt"
    position = len(corpus) // 2
    altered.write_text(corpus[:position] + ("a" if corpus[position] != "a" else "b") + corpus[position + 1 :],
                       encoding="utf-8")
    with pytest.raises(datasets.DatasetChecksumError, match="fails its checksum") as error:
        datasets.load_shakespeare(altered)
    assert str(altered) in str(error.value) and "python -m lab.datasets fetch-shakespeare" in str(error.value)
    with pytest.raises(datasets.DatasetNotFoundError, match="fetch-shakespeare"):
        datasets.load_shakespeare(tmp_path / "absent.txt")


def test_a_study_on_a_corrupt_corpus_ends_with_one_error_line_and_exit_code_2(tmp_path, monkeypatch, capsys):
    # in this process: a data error ending a real process is checked once, for MNIST
    # (tests/experiments/test_compare_optimizers.py)
    bad = tmp_path / "shakespeare.txt"
    bad.write_text("To be, or not to be\n", encoding="utf-8")
    monkeypatch.setenv(datasets.SHAKESPEARE_ENV_VAR, str(bad))
    with pytest.raises(SystemExit) as exit_info:
        run_main(compare_optimizers.main, ["--quick", "--problems", "shakespeare_transformer", "--out",
                                           str(tmp_path / "out"), "--no-progress", "--no-tensorboard"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert exit_info.value.code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "shakespeare_transformer" in lines[0] and str(bad) in lines[0]
    assert "python -m lab.datasets fetch-shakespeare" in lines[0]


def test_the_blocks_cover_the_corpus_once_eighty_ten_ten():
    parts = shakespeare_blocks(CORPUS_LENGTH)
    ranges = sorted(r for blocks in parts.values() for r in blocks)
    assert ranges[0][0] == 0 and ranges[-1][1] == CORPUS_LENGTH
    assert all(stop == next_start for (_, stop), (next_start, _) in zip(ranges, ranges[1:]))  # contiguous, disjoint
    assert len(ranges) == math.ceil(CORPUS_LENGTH / SHAKESPEARE_BLOCK) == 74
    # blocks 4, 14, ..., 64 validate and 9, 19, ..., 69 are test data: 7 each, 60 train (the last one short)
    assert [start // SHAKESPEARE_BLOCK for start, _ in parts["validation"]] == list(range(4, 74, 10))
    assert [start // SHAKESPEARE_BLOCK for start, _ in parts["test"]] == list(range(9, 74, 10))
    assert len(parts["train"]) == 60


def test_no_window_or_target_of_one_part_holds_a_character_of_another():
    # a corpus whose every block is written in its part's own letter: any window or target that
    # crossed into another part's block, or was taken from the wrong block, would show its letter
    letter = {"train": "t", "validation": "v", "test": "s"}
    length = 20 * SHAKESPEARE_BLOCK + 1000
    text = [""] * length
    chars = np.empty(length, dtype="<U1")
    for part, blocks in shakespeare_blocks(length).items():
        for start, stop in blocks:
            chars[start:stop] = letter[part]
    text = "".join(chars)
    split = shakespeare_split(context=64, corpus=text)
    vocabulary = "".join(sorted(set(text)))  # "stv"
    code = {part: vocabulary.index(letter[part]) for part in letter}
    for part, x, y in (("train", split.x_train, split.y_train), ("validation", split.x_val, split.y_val),
                       ("test", split.x_test, split.y_test)):
        assert x.dtype == np.int32 and x.shape[1] == 64 and x.shape == y.shape
        assert np.all(x == code[part]) and np.all(y == code[part]), part
    # each block of 65,536 characters gives (65,536 - 1) // 64 = 1,023 windows
    assert (len(split.x_train), len(split.x_val), len(split.x_test)) == (16 * 1023 + 15, 2 * 1023, 2 * 1023)


def test_the_problem_split_is_real_text_with_targets_one_character_later(corpus):
    split = PROBLEMS["shakespeare_transformer"].split()
    assert (len(split.x_train), len(split.x_val), len(split.x_test)) == (16_384, 2_048, 2_048)
    vocabulary = "".join(sorted(set(corpus)))
    first = "".join(vocabulary[c] for c in split.x_train[0])
    assert corpus.startswith(first)  # the first training window opens the corpus
    np.testing.assert_array_equal(split.x_train[0, 1:], split.y_train[0, :-1])
    # the validation part's first window opens block 4
    start = 4 * SHAKESPEARE_BLOCK
    assert "".join(vocabulary[c] for c in split.x_val[0]) == corpus[start : start + 64]
    # the notebook protocol trains on training and validation windows and validates on the test ones
    notebook = protocol_view(split, "notebook")
    assert len(notebook.x_train) == 18_432 and notebook.x_val is split.x_test
    quick = PROBLEMS["shakespeare_transformer"].quick_version().split()
    assert (len(quick.x_train), len(quick.x_val), len(quick.x_test)) == (2_048, 256, 256)


LINE = "to be, or not to be: that is the question.\n"  # 43 characters, 17 distinct
# its characters' counts: ' ' 9, t 7, o 5, e 4, b n h i s 2 each, and 1 each of , r : a q u . \n
LINE_COUNTS = (9, 7, 5, 4, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1)


def test_the_untrained_model_scores_log_vocabulary_and_a_unigram_read_out_the_entropy():
    corpus = datasets.encode_characters(LINE * 40)
    size = len(corpus.vocabulary)
    # context 43: 39 windows whose targets are 39 whole turns of the line (shifted by one)
    x, y = datasets.character_windows(corpus.codes, len(LINE))
    assert size == 17 and x.shape == (39, 43) and sum(LINE_COUNTS) == 43
    model = models.char_transformer(0, vocabulary_size=size, context=len(LINE), width=32, depth=2, heads=4)
    model.compile(loss="sparse_categorical_crossentropy", metrics=[metrics.bits_per_character])
    # zero read-out: every character has probability 1/17 whatever the input, so the loss is
    # ln 17 = 2.833213 nats = log2 17 = 4.087463 bits
    loss, bits = model.evaluate(x, y, verbose=0, batch_size=len(x))
    np.testing.assert_allclose(loss, 2.833213344, rtol=1e-6)
    np.testing.assert_allclose(bits, 4.087462841, rtol=1e-6)
    # a read-out bias of log(n_c / 43) (kernel still zero) predicts the line's character
    # frequencies at every position: the cross-entropy is their entropy,
    # H = -sum (n/43) ln(n/43) = 2.507241 nats = 3.617185 bits
    counts = np.bincount(corpus.codes[:43], minlength=size)
    assert sorted(counts, reverse=True) == list(LINE_COUNTS)
    model.get_layer("next_character").bias.assign(np.log(counts / 43.0).astype("float32"))
    loss, bits = model.evaluate(x, y, verbose=0, batch_size=len(x))
    np.testing.assert_allclose(loss, 2.507241, rtol=1e-5)
    np.testing.assert_allclose(bits, 3.617185, rtol=1e-5)


def test_the_model_builds_and_a_few_steps_of_adamw_lower_its_loss():
    import keras

    from lab.optimizers import AdamW

    corpus = datasets.encode_characters(LINE * 40)
    x, y = datasets.character_windows(corpus.codes, 32)
    model = PROBLEMS["shakespeare_transformer"].model(0)
    assert model.count_params() == 114_254 and model.output_shape == (None, 64, 78)
    small = models.char_transformer(1, vocabulary_size=17, context=32, width=32, depth=2, heads=4)
    small.compile(optimizer=AdamW(learning_rate=3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    before = float(small.evaluate(x, y, verbose=0)[0])
    history = small.fit(x, y, batch_size=16, epochs=10, verbose=0, shuffle=False)
    after = float(small.evaluate(x, y, verbose=0)[0])
    np.testing.assert_allclose(before, math.log(17), rtol=1e-6)
    assert after < 0.75 * before and np.all(np.isfinite(history.history["loss"]))
    # the same seed builds the same weights; another seed others
    again = models.char_transformer(1, vocabulary_size=17, context=32, width=32, depth=2, heads=4)
    fresh = models.char_transformer(1, vocabulary_size=17, context=32, width=32, depth=2, heads=4)
    assert all(np.array_equal(a, b) for a, b in zip(again.get_weights(), fresh.get_weights()))
    keras.backend.clear_session()
