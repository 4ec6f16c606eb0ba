"""Text models' tokenizers: a WordPiece vocabulary learned from a training split, kept in the checkpoint folder.

A text checkpoint is a folder (``save_pretrained``): the weights (``model.safetensors``), ``config.json``,
and the tokenizer it was trained with (``tokenizer.json``, ``tokenizer_config.json``). The evaluator reads
the tokenizer back from that folder only: no hub, no network, no code named by the files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import ZooError

SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
# larger is a hostile or broken file, not a tokenizer of a zoo model
_MAX_CONFIG_BYTES = 1 << 20


def _bert_pipeline(tokenizer: Any) -> Any:
    from tokenizers import normalizers, pre_tokenizers

    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return tokenizer


def train_wordpiece(texts: Iterable[str], vocab_size: int, max_length: int) -> Any:
    """A BERT-style WordPiece tokenizer (lower-case, ``[CLS] text [SEP]``) learned from ``texts``, as a
    ``transformers.PreTrainedTokenizerFast`` that truncates to ``max_length`` tokens. The same texts give
    the same ``tokenizer.json`` bytes on every run."""
    from tokenizers import Tokenizer, decoders, models, processors, trainers
    from transformers import PreTrainedTokenizerFast

    texts = [str(t) for t in texts]
    probe = _bert_pipeline(Tokenizer(models.WordPiece(unk_token="[UNK]")))
    # The trainer numbers each "##c" (a character inside a word) as it meets it while walking a hash map,
    # and breaks ties between equally frequent merges by those numbers: from run to run the ids, and at
    # the vocabulary's cut-off the tokens, differed. Declared up front in sorted order, they are numbered
    # before training starts, which makes the whole vocabulary a function of the texts.
    inner = sorted({c for t in texts for word, _ in probe.pre_tokenizer.pre_tokenize_str(probe.normalizer.normalize_str(t))
                    for c in word[1:]})
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                        special_tokens=[*SPECIAL_TOKENS, *(f"##{c}" for c in inner)])
    probe.train_from_iterator(texts, trainer)
    vocab = probe.get_vocab()
    # rebuilt so that only the real special tokens are special (the "##c" are ordinary vocabulary)
    tok = _bert_pipeline(Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]")))
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=max_length)


def load_tokenizer(folder: Path) -> Any:
    """The tokenizer saved in a checkpoint folder, read from its files alone (``tokenizer.json`` and the
    special tokens and maximum length of ``tokenizer_config.json``); ZooError when they are missing or bad."""
    from transformers import PreTrainedTokenizerFast

    folder = Path(folder)
    if not (folder / TOKENIZER_FILE).is_file():
        raise ZooError(f"{folder}: no {TOKENIZER_FILE}; a text checkpoint is a folder holding its tokenizer "
                       "(save_pretrained writes it)")
    options: dict[str, Any] = {}
    config = folder / TOKENIZER_CONFIG
    if config.is_file():
        try:
            if config.stat().st_size > _MAX_CONFIG_BYTES:
                raise ValueError(f"larger than {_MAX_CONFIG_BYTES} bytes")
            raw = json.loads(config.read_bytes())
            if not isinstance(raw, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as e:
            raise ZooError(f"{config}: not a readable tokenizer config ({e})") from None
        # only plain values: a config naming classes or code (tokenizer_class, auto_map) is not followed
        options = {k: v for k, v in raw.items() if k.endswith("_token") and isinstance(v, str)}
        length = raw.get("model_max_length")
        if isinstance(length, int) and not isinstance(length, bool) and length > 0:
            options["model_max_length"] = length
    try:
        return PreTrainedTokenizerFast(tokenizer_file=str(folder / TOKENIZER_FILE), **options)
    except Exception as e:  # the tokenizers library raises its own exception types for a bad file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ZooError(f"{folder / TOKENIZER_FILE}: not a tokenizer ({first})") from None


def max_length(tokenizer: Any, model: Any = None) -> int:
    """How many tokens a text is cut to: the tokenizer's ``model_max_length``, at most the model's
    ``max_position_embeddings`` (and 512 when neither says)."""
    limits = [int(n) for n in (getattr(tokenizer, "model_max_length", None),
                               getattr(getattr(model, "config", None), "max_position_embeddings", None))
              if isinstance(n, int) and 0 < n < 1_000_000]  # transformers' "no limit" is a huge sentinel
    return min(limits) if limits else 512


def encode(tokenizer: Any, texts: Iterable[str], length: int) -> dict[str, Any]:
    """Token ids and attention masks ``[N, length]`` of ``texts``: cut to ``length`` tokens and padded to it,
    so a text's tensors never depend on the others of its batch."""
    enc = tokenizer([str(t) for t in texts], truncation=True, max_length=length, padding="max_length",
                    return_tensors="pt")
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # transformers leaves these settings on the Rust tokenizer, and save_pretrained would write them
        # into tokenizer.json: a file that then depended on whether text had been encoded before saving
        backend.no_truncation()
        backend.no_padding()
    return dict(enc)
