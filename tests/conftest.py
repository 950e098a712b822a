"""Shared fixtures: tiny random-weight backbones of every kind, the real packaged model, tiny tasks,
the demo suite and the shipped results, and the environment of an app test (its store, no worker).

Nothing here downloads: every tiny model is built from a transformers config (hidden 32, 2 layers)
and shares the packaged MiniLM's BERT WordPiece tokenizer (vocab 30522), read from disk.

Example::

    def test_x(make_tiny_backbone, tiny_task):
        bb = make_tiny_backbone("t5")                      # a Seq2SeqBackbone, d = 32, 2 layers
        task = tiny_task("t3", n_labels=3)                 # Task with 3 labels
        enc = bb.collate(task.train[:4])
        bb.logits(enc, torch.zeros(4, dtype=torch.long), bb.label_table([task]))   # [4, 3]
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Callable, Iterator
from unittest import mock

import pytest
import torch

from ipt_core.backbones import Backbone, from_model, load_backbone, packaged_model_path
from ipt_core.store import Store
from ipt_core.tasks import Example, Suite, Task, load_suite

# One seed per run for the fuzzers (hypothesis draws), printed at the end of the run, so a failure
# found on some draw replays exactly: IPT_FUZZ_SEED=<seed> python -m pytest tests/test_cli_fuzz.py
FUZZ_SEED = int(os.environ.setdefault("IPT_FUZZ_SEED", str(random.SystemRandom().randrange(2**32))))


def pytest_report_header(config):
    return f"fuzz seed: IPT_FUZZ_SEED={FUZZ_SEED}"


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"fuzz seed: IPT_FUZZ_SEED={FUZZ_SEED} (replays the fuzzers' draws)")


TINY_HIDDEN = 32
TINY_LAYERS = 2
TINY_MAX_LENGTH = 64
INIT_STD = 0.2  # 10x the usual 0.02: at 0.02 a tiny BART barely reacts to its input (scores move ~1e-3)
# name -> backbone spec; the kind is the part before ":"
TINY_SPECS = {
    "encoder_sim": "encoder-sim:tiny-bert",
    "bert_mlm": "encoder-mlm:tiny-bert",
    "t5": "seq2seq:tiny-t5",
    "bart": "seq2seq:tiny-bart",
    "gpt2": "causal:tiny-gpt2",
    "llama": "causal:tiny-llama",
}

# every word is one WordPiece token of the BERT vocabulary
_FILLER = ("the", "a", "film", "day", "it", "was", "very", "and", "this", "one", "of", "my", "that", "we", "had")
_KEYWORDS = ("great", "awful", "sky", "grass", "fire", "snow", "music", "money")
_LABELS = ("positive", "negative", "blue sky", "green", "red", "white", "art", "cash")  # "blue sky": 2 tokens


def _tiny_model(name: str, vocab: int) -> torch.nn.Module:
    import transformers as tf

    h, n = TINY_HIDDEN, TINY_LAYERS
    if name in ("encoder_sim", "bert_mlm"):
        cfg = tf.BertConfig(
            vocab_size=vocab, hidden_size=h, num_hidden_layers=n, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=128, initializer_range=INIT_STD,
        )
        return tf.BertModel(cfg, add_pooling_layer=False) if name == "encoder_sim" else tf.BertForMaskedLM(cfg)
    if name == "t5":
        cfg = tf.T5Config(
            vocab_size=vocab, d_model=h, d_kv=16, d_ff=64, num_layers=n, num_decoder_layers=n, num_heads=2,
            pad_token_id=0, eos_token_id=102, decoder_start_token_id=0,
        )
        return tf.T5ForConditionalGeneration(cfg)
    if name == "bart":
        cfg = tf.BartConfig(
            vocab_size=vocab, d_model=h, encoder_layers=n, decoder_layers=n, encoder_attention_heads=2,
            decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=128,
            pad_token_id=0, bos_token_id=101, eos_token_id=102, decoder_start_token_id=102, forced_eos_token_id=None,
            init_std=INIT_STD,
        )
        return tf.BartForConditionalGeneration(cfg)
    if name == "gpt2":
        cfg = tf.GPT2Config(
            vocab_size=vocab, n_embd=h, n_layer=n, n_head=2, n_positions=128, bos_token_id=101, eos_token_id=102,
            pad_token_id=0, initializer_range=INIT_STD,
        )
        return tf.GPT2LMHeadModel(cfg)
    if name == "llama":
        cfg = tf.LlamaConfig(
            vocab_size=vocab, hidden_size=h, intermediate_size=64, num_hidden_layers=n, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=128, pad_token_id=0, bos_token_id=101, eos_token_id=102,
            initializer_range=INIT_STD,
        )
        return tf.LlamaForCausalLM(cfg)
    raise KeyError(f"no tiny model {name!r}; choose from {sorted(TINY_SPECS)}")


@pytest.fixture(scope="session")
def tokenizer():
    """The packaged MiniLM's BERT WordPiece tokenizer (vocab 30522), loaded from disk."""
    import transformers as tf

    return tf.AutoTokenizer.from_pretrained(str(packaged_model_path()), local_files_only=True)


@pytest.fixture
def make_tiny_backbone(tokenizer) -> Iterator[Callable[..., Backbone]]:
    """Factory: ``make_tiny_backbone(name, seed=0, **options)`` -> a frozen random-weight Backbone.

    ``name`` is a key of ``TINY_SPECS``; the same seed gives the same weights (the global torch
    RNG is reseeded, then restored). The test runs with one torch thread: ops on 32-wide tensors
    gain nothing from more, and on a busy 2-core machine two threads ran a bank ~10x slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)

    def make(name: str, seed: int = 0, **options) -> Backbone:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = _tiny_model(name, len(tokenizer))
        return from_model(TINY_SPECS[name], model, tokenizer, max_length=TINY_MAX_LENGTH, **options)

    yield make
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_encoder_sim(make_tiny_backbone) -> Backbone:
    return make_tiny_backbone("encoder_sim")


@pytest.fixture
def bb(tiny_encoder_sim) -> Backbone:
    """The tiny encoder-sim backbone, under the short name the bank and method tests use."""
    return tiny_encoder_sim


@pytest.fixture
def tiny_bert_mlm(make_tiny_backbone) -> Backbone:
    return make_tiny_backbone("bert_mlm")


@pytest.fixture
def tiny_t5(make_tiny_backbone) -> Backbone:
    return make_tiny_backbone("t5")


@pytest.fixture
def tiny_bart(make_tiny_backbone) -> Backbone:
    return make_tiny_backbone("bart")


@pytest.fixture
def tiny_gpt2(make_tiny_backbone) -> Backbone:
    return make_tiny_backbone("gpt2")


@pytest.fixture
def tiny_llama(make_tiny_backbone) -> Backbone:
    return make_tiny_backbone("llama")


@pytest.fixture(params=sorted(TINY_SPECS))
def tiny_backbone(request, make_tiny_backbone) -> Backbone:
    """Each tiny backbone in turn (test ids name it)."""
    return make_tiny_backbone(request.param)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A tiny random BERT (d = 32, 2 layers, 160 positions) with the packaged tokenizer, saved like a real
    checkpoint: ``load_backbone(f"encoder-sim:{tiny_bert_dir}")`` or a CLI ``--backbone`` loads it."""
    import transformers as tf

    path = tmp_path_factory.mktemp("tiny-bert")
    tok = tf.AutoTokenizer.from_pretrained(str(packaged_model_path()))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        cfg = tf.BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, max_position_embeddings=160)
        tf.BertModel(cfg).eval().save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _no_network(*args, **kwargs):
    raise OSError("tests must not touch the network")


@pytest.fixture(scope="session")
def real_backbone() -> Backbone:
    """The packaged all-MiniLM-L6-v2 ``encoder-sim`` backbone, loaded once; any network use fails the load."""
    with mock.patch.dict(os.environ, {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}), \
            mock.patch("socket.socket.connect", _no_network), mock.patch("socket.create_connection", _no_network):
        return load_backbone("encoder-sim")


def make_tiny_task(
    name: str = "tiny",
    n_labels: int = 2,
    *,
    n_train: int = 8,
    n_dev: int = 6,
    n_test: int = 6,
    pair: bool = False,
    seed: int = 0,
) -> Task:
    """A small learnable task: a row of label ``j`` holds keyword ``j`` among 1-9 filler words.

    Row lengths vary, so batches get padded. Labels come from a fixed pool (one has 2 tokens).
    """
    if not 2 <= n_labels <= len(_LABELS):
        raise ValueError(f"n_labels must be in 2..{len(_LABELS)}")
    rng = random.Random(f"{name}-{seed}")

    def text(label: int) -> str:
        words = [rng.choice(_FILLER) for _ in range(rng.randint(1, 9))]
        words.insert(rng.randint(0, len(words)), _KEYWORDS[label])
        return " ".join(words)

    def split(k: int) -> tuple[Example, ...]:
        rows = []
        for i in range(k):
            label = i % n_labels
            rows.append(Example(text(label), label, text(rng.randrange(n_labels)) if pair else None))
        return tuple(rows)

    return Task(
        name=name, type="tiny", labels=_LABELS[:n_labels], input_fields=("text", "text_pair") if pair else ("text",),
        description=f"tiny task {name}", train=split(n_train), dev=split(n_dev), test=split(n_test),
    )


@pytest.fixture
def tiny_task() -> Callable[..., Task]:
    """Factory: ``tiny_task(name, n_labels, n_train=8, n_dev=6, n_test=6, pair=False, seed=0)`` -> Task."""
    return make_tiny_task


@pytest.fixture
def tasks(tiny_task) -> list[Task]:
    """Three tiny tasks with 2, 3 and 4 labels (a module may define its own ``tasks``)."""
    return [
        tiny_task("two", 2, n_train=8, n_dev=6, n_test=8, seed=1),
        tiny_task("three", 3, n_train=9, n_dev=6, n_test=9, seed=2),
        tiny_task("four", 4, n_train=12, n_dev=8, n_test=8, seed=3),
    ]


@pytest.fixture(scope="session")
def demo() -> Suite:
    """The demo suite shipped in ``ipt_core/suites/demo``."""
    return load_suite("demo")


@pytest.fixture(scope="session")
def shipped() -> Store:
    """The read-only store of results shipped with the package (``ipt_core/shipped_results``)."""
    from ipt_core.experiments.ipt import shipped_store

    st = shipped_store()
    assert st is not None, "ipt_core/shipped_results is missing"
    return st


@pytest.fixture
def app_env(monkeypatch) -> Callable[..., Path]:
    """Factory: ``app_env(root, shipped=False)`` -> ``root``, the store the app opens (``IPT_CACHE``).

    No worker starts by itself (``IPT_JOBS_AUTOSTART=0``: the tests run jobs themselves, e.g. with
    ``jobs.run_job_inline``); the shipped demo results are shown with ``shipped`` only (else
    ``IPT_SHIPPED_RESULTS=0``: a truly empty store).
    """
    def setup(root: Path, shipped: bool = False) -> Path:
        monkeypatch.setenv("IPT_CACHE", str(root))
        monkeypatch.setenv("IPT_JOBS_AUTOSTART", "0")
        if shipped:
            monkeypatch.delenv("IPT_SHIPPED_RESULTS", raising=False)
        else:
            monkeypatch.setenv("IPT_SHIPPED_RESULTS", "0")
        return root

    return setup


@pytest.fixture
def store_root(tmp_path, app_env) -> Path:
    """An empty store for the app at ``tmp_path`` (no shipped results, no worker)."""
    return app_env(tmp_path)


@pytest.fixture
def shipped_root(tmp_path, app_env) -> Path:
    """A store for the app at ``tmp_path`` that shows the shipped demo results (no worker)."""
    return app_env(tmp_path, shipped=True)
