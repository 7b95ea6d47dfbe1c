"""Safe checkpoints for models converted with :func:`bitmm.nn.convert`:
safetensors only (no pickle, so loading never runs code), with the bitmm layer
layout stored in the file's metadata and checked on load.

    import bitmm.checkpoint as ckpt
    ckpt.save(model, "model.safetensors")
    ckpt.load(skeleton, "model.safetensors")   # skeleton: the same architecture, converted

Requires the optional dependency ``safetensors`` (``pip install safetensors``).
"""
from __future__ import annotations

import json
from typing import Optional

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


def _storage_key(t):
    # Which storage a state-dict tensor lives in (tied weights share one; safetensors' save_model writes one name per
    # storage and load_model excuses the others): None for tensors without real memory (meta, empty, lazy).
    try:
        st = t.untyped_storage()
        return (t.device, st.data_ptr(), st.nbytes()) if st.data_ptr() != 0 and st.nbytes() != 0 else None
    except (RuntimeError, NotImplementedError, ValueError):
        return None


def _key_problems(path: str, model: nn.Module, strict: bool) -> list[str]:
    """What ``load_state_dict`` would reject after copying the rest (it copies every tensor it can, then raises),
    found from the file's header alone: a tensor whose shape differs from the model's (PackedLinear's own buffers
    excepted: that layer adopts the file's scale / offset / bias layouts and checks them, ``_check_packed_values``)
    and, with ``strict``, tensors of the model the file lacks (a name tied to one the file holds excepted) and of the
    file the model lacks (a PackedLinear's offset / bias the model registers as None excepted)."""
    from safetensors import safe_open
    from torch.nn.parameter import is_lazy
    from .nn import PackedLinear
    sd = model.state_dict(keep_vars=True)
    packed_names = {(f"{name}." if name else "") + b for name, m in model.named_modules() if isinstance(m, PackedLinear)
                    for b in ("packed_weight", "scale", "offset", "bias")}
    with safe_open(path, framework="pt", device="cpu") as f:
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    problems = [f"{k}: shape {shapes[k]} in the file, {tuple(t.shape)} in the model" for k, t in sd.items()
                if k in shapes and k not in packed_names and not is_lazy(t) and tuple(t.shape) != shapes[k]]
    if strict:
        present = {_storage_key(t) for k, t in sd.items() if k in shapes} - {None}
        missing = sorted(k for k, t in sd.items() if k not in shapes and _storage_key(t) not in present)
        unexpected = sorted(k for k in shapes if k not in sd and k not in packed_names)
        if missing or unexpected:
            problems.append(f"{len(missing)} of the model's tensors not in the file (e.g. {missing[:3]}), "
                            f"{len(unexpected)} of the file's not in the model (e.g. {unexpected[:3]}); strict=False "
                            "loads what fits and warns about the rest")
    return problems


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
    problems = _key_problems(path, model, strict)
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
        import warnings
        warnings.warn(f"bitmm.checkpoint.load({path!r}, strict=False): {len(missing)} of the model's tensors not in "
                      f"the file (e.g. {sorted(missing)[:3]}), {len(unexpected)} of the file's not in the model "
                      f"(e.g. {sorted(unexpected)[:3]})", stacklevel=2)
    return model
