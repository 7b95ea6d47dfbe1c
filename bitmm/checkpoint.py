"""Safe checkpoints for models converted with :func:`bitmm.nn.convert`:
safetensors only (no pickle, so loading never runs code), with the bitmm layer
layout stored in the file's metadata and checked on load.

    import bitmm.checkpoint as ckpt
    ckpt.save(model, "model.safetensors")
    ckpt.load(skeleton, "model.safetensors")   # skeleton: the same architecture, converted

Requires the optional dependency ``safetensors`` (``pip install safetensors``).
"""
from __future__ import annotations

import copy
import json
import warnings
from typing import Optional

import torch
from torch import nn

FORMAT = "bitmm"
FORMAT_VERSION = "1"


def _safetensors():
    try:
        import safetensors.torch as st
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError("bitmm.checkpoint needs the optional dependency safetensors: pip install safetensors") from e
    return st


def _layer_table(model: nn.Module) -> dict:
    from .nn import BitLinear, PackedLinear
    table = {}
    for name, m in model.named_modules():
        if isinstance(m, PackedLinear):
            table[name] = {"type": "PackedLinear", "kind": m.kind, "in_features": m.in_features,
                           "out_features": m.out_features, "group_size": m.group_size, "act_bits": m.act_bits}
        elif isinstance(m, BitLinear):
            table[name] = {"type": "BitLinear", "weight_bits": m.weight_bits, "in_features": m.in_features,
                           "out_features": m.out_features, "group_size": m.group_size, "act_bits": m.act_bits}
    return table


def _check_packed_values(path: str, model: nn.Module) -> None:
    """The checks of PackedLinear's state-dict loading (``_state_dict_problems``: int32 packed weight of the
    layer's shape, no ternary code 3, scale / offset / bias layouts, finite scale / offset as the model's buffers
    hold them), made on the file's tensors for every packed layer of the model (with strict=False too) before
    anything is copied: load_state_dict would copy the layers before a bad one."""
    from safetensors import safe_open
    from .nn import PackedLinear
    problems = []
    with safe_open(path, framework="pt", device="cpu") as f:
        keys = set(f.keys())
        for name, m in model.named_modules():
            if isinstance(m, PackedLinear):
                prefix = f"{name}." if name else ""
                entries = {prefix + k: f.get_tensor(prefix + k) for k in ("packed_weight", "scale", "offset", "bias")
                           if prefix + k in keys}
                problems += m._state_dict_problems(entries, prefix)
    if problems:
        raise ValueError(f"{path}: could not load tensors into the model: {'; '.join(problems)} (a tampered or "
                         f"corrupted checkpoint, or another layout)")


# safetensors' dtype names (the header's "dtype" field) as torch dtypes, for the dry run's meta tensors
_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
           "BOOL": torch.bool}


def _meta_copy(model: nn.Module) -> Optional[nn.Module]:
    """The model with every parameter and buffer, and every tensor its modules keep as attributes (derived layouts),
    a meta tensor: the same modules, hooks and ties, no memory.  None where the model cannot be copied so."""
    memo = {}

    def to_meta(t):
        m = torch.empty_like(t, device="meta")
        return nn.Parameter(m, requires_grad=t.requires_grad) if isinstance(t, nn.Parameter) else m

    try:
        for mod in model.modules():
            for v in vars(mod).values():  # (_parameters and _buffers are dicts among them)
                for t in v.values() if isinstance(v, dict) else v if isinstance(v, (tuple, list)) else (v,):
                    if isinstance(t, torch.Tensor) and id(t) not in memo:
                        memo[id(t)] = to_meta(t)
        return copy.deepcopy(model, memo)
    except Exception:  # (a module that cannot be deep-copied, a lazy parameter, a tensor subclass)
        return None


def _dry_run_problems(path: str, model: nn.Module, strict: bool) -> list[str]:
    """What loading `path` into `model` would reject, found by loading meta tensors of the file's names, shapes and
    dtypes into a meta copy of the model (``load_state_dict``'s own rules and hooks), then, with `strict`, applying
    safetensors' ``load_model`` rule for tied names: ``load_state_dict`` copies every tensor that fits before it
    raises, and ``load_model`` checks names only after that.  Empty where the dry run cannot be made (the load then
    goes on, as torch's would)."""
    from safetensors import safe_open
    clone = _meta_copy(model)
    if clone is None:
        return []
    with safe_open(path, framework="pt", device="cpu") as f:
        header = {k: (f.get_slice(k).get_shape(), f.get_slice(k).get_dtype()) for k in f.keys()}
    if any(dtype not in _DTYPES for _, dtype in header.values()):
        return []
    file_sd = {k: torch.empty(shape, dtype=_DTYPES[dtype], device="meta") for k, (shape, dtype) in header.items()}
    try:
        with warnings.catch_warnings():  # (torch warns that copies into meta tensors are no-ops)
            warnings.simplefilter("ignore")
            missing, unexpected = clone.load_state_dict(file_sd, strict=False)
    except RuntimeError as e:
        if str(e).startswith("Error(s) in loading state_dict"):  # (size mismatches, PackedLinear's checks)
            return [str(e)]
        return []  # (a hook that needs real values)
    except Exception:
        return []
    if not strict:
        return []
    try:  # load_model's rule: of a storage the model shares, it keeps one name (the file's) and drops the others
        from safetensors.torch import _remove_duplicate_names
        dropped = _remove_duplicate_names(model.state_dict(), preferred_names=list(file_sd))
    except Exception:
        dropped = {}
    missing, tied = set(missing), []
    for keep, names in dropped.items():
        for name in names:  # (as load_model: a dropped name the file holds is unexpected, else it is not missing)
            if name in missing:
                missing.discard(name)
            else:
                tied.append(f"{name} (tied to {keep})")
    if not (missing or unexpected or tied):
        return []
    missing, unexpected = sorted(missing), sorted(unexpected)
    problems = [f"{len(missing)} of the model's tensors not in the file (e.g. {missing[:3]}), {len(unexpected)} of "
                f"the file's not in the model (e.g. {unexpected[:3]})"] if missing or unexpected else []
    if tied:
        problems.append(f"the file holds {len(tied)} tensor(s) the model ties to another name the file holds too "
                        f"(e.g. {sorted(tied)[:3]}); tie them in the file's model too, or untie them in this one")
    return problems + ["strict=False loads what fits and warns about the rest"]


def save(model: nn.Module, path: str, metadata: Optional[dict] = None) -> None:
    """Writes the model's state (parameters and buffers) and its bitmm layer table; `metadata` adds string
    entries other than bitmm's own keys (format, format_version, layers)."""
    st = _safetensors()
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "layers": json.dumps(_layer_table(model))}
    if metadata:
        taken = sorted(str(k) for k in metadata if str(k) in meta)
        if taken:
            raise ValueError(f"bitmm.checkpoint.save: metadata keys {taken} are bitmm's own (format, format_version, "
                             f"layers: what load checks); use other names")
        meta.update({str(k): str(v) for k, v in metadata.items()})
    # save_model de-duplicates tensors that share storage (tied weights) itself.
    st.save_model(model, path, metadata=meta)


def load(model: nn.Module, path: str, strict: bool = True, device: Optional[str] = None) -> nn.Module:
    """Loads `path` into `model` (already converted to the same bitmm layout).

    Raises ValueError naming the problem for a file that is not a safetensors file
    (truncated, tampered), not a bitmm checkpoint, whose layers do not match
    `model` (kind, shape, group size), or whose packed layers hold values no bitmm
    writer makes (a ternary code 3, a NaN / Inf scale, offset or bias), or whose
    other tensors do not fit (a shape that differs; with ``strict``, a tensor of the
    model the file lacks or one of the file the model lacks) -- before any tensor is
    copied.  With ``strict=False`` a partial load warns, naming what was left out,
    and a file of which no packed weight fits the model raises ValueError.
    """
    st = _safetensors()
    from safetensors import safe_open
    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error types for bad headers
        raise ValueError(f"{path}: not a readable safetensors file ({type(e).__name__}: {e})") from e
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a bitmm checkpoint (metadata format={meta.get('format')!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: bitmm checkpoint format version {meta.get('format_version')!r}, "
                         f"this bitmm reads version {FORMAT_VERSION}")
    try:
        saved = json.loads(meta.get("layers", "{}"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: corrupt bitmm layer table in the metadata: {e}") from e
    if not isinstance(saved, dict):  # (valid JSON of another type: a tampered file)
        raise ValueError(f"{path}: corrupt bitmm layer table in the metadata: a JSON {type(saved).__name__}, "
                         "not an object")
    mine = _layer_table(model)
    if strict and saved.keys() != mine.keys():
        missing, extra = sorted(set(saved) - set(mine)), sorted(set(mine) - set(saved))
        raise ValueError(f"{path}: bitmm layers differ from the model's: in the file only {missing}, "
                         f"in the model only {extra}")
    for name in saved.keys() & mine.keys():
        if saved[name] != mine[name]:
            raise ValueError(f"{path}: layer {name!r} was saved as {saved[name]} but the model has {mine[name]}; "
                             "convert the model with the same settings before loading")
    _check_packed_values(path, model)
    problems = _dry_run_problems(path, model, strict)
    if problems:  # (before anything is copied: load_state_dict would copy what fits, then raise)
        raise ValueError(f"{path}: could not load tensors into the model: {'; '.join(problems)}")
    if not strict:
        with safe_open(path, framework="pt", device="cpu") as f:
            packed = [k for k in f.keys() if k == "packed_weight" or k.endswith(".packed_weight")]
        if packed and not set(packed) & set(model.state_dict().keys()):  # (not one packed layer would find a place)
            raise ValueError(f"{path}: none of the file's {len(packed)} packed weights matches a buffer of the model "
                             f"(e.g. {sorted(packed)[:3]}); convert the model with the same layout first")
    try:
        missing, unexpected = st.load_model(model, path, strict=strict, device=device or "cpu")
    except Exception as e:
        raise ValueError(f"{path}: could not load tensors into the model ({type(e).__name__}: {e})") from e
    if not strict and (missing or unexpected):
        warnings.warn(f"bitmm.checkpoint.load({path!r}, strict=False): {len(missing)} of the model's tensors not in "
                      f"the file (e.g. {sorted(missing)[:3]}), {len(unexpected)} of the file's not in the model "
                      f"(e.g. {sorted(unexpected)[:3]})", stacklevel=2)
    return model
