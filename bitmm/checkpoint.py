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
import itertools
import json
import threading
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


def _dtypes() -> dict:
    # safetensors' dtype names (the header's "dtype" field) as torch dtypes, for the dry run's meta tensors
    import safetensors.torch as st
    return {**getattr(st, "_TYPES", {}), "F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
            "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
            "U8": torch.uint8, "BOOL": torch.bool}


def _hook_functions(mod: nn.Module):
    # the functions of a module's load_state_dict hooks (torch wraps some in _WrappedHook; partials unwrapped)
    for hooks in (getattr(mod, "_load_state_dict_pre_hooks", {}), getattr(mod, "_load_state_dict_post_hooks", {})):
        for h in hooks.values():
            for _ in range(4):
                h = getattr(h, "hook", None) or getattr(h, "func", None) or h
            yield h


_SHARED_TYPES = (type(threading.Lock()), type(threading.RLock()), torch.Generator)


def _meta_copy(model: nn.Module) -> Optional[nn.Module]:
    """A deep copy of the model in which every tensor its modules hold (parameters, buffers, derived layouts, tensors
    in containers or in objects they keep) is a meta tensor of the same type, shape, strides and inference state:
    the same modules and ties, no memory.  None (no dry run) where such a copy cannot be vouched for: a module or
    object that cannot be deep-copied, a scripted module (its deepcopy ignores the memo), a load hook that closes
    over objects (it would act on the real model during the dry run), a copy that shares a module or a real tensor
    with the model (a module whose own __deepcopy__ returns itself)."""
    memo, seen = {}, set()

    def to_meta(t):
        with torch.inference_mode(t.is_inference()):  # (an inference tensor's copy is one too: copy_ refuses both)
            m = torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="meta")
            return torch.Tensor._make_subclass(type(t), m, t.requires_grad) if type(t) is not torch.Tensor else m

    def collect(v, depth):  # the tensors reachable from a module's attributes, a few containers / objects deep
        if id(v) in seen or depth > 4:
            return
        seen.add(id(v))
        if isinstance(v, torch.Tensor):
            memo[id(v)] = to_meta(v)
        elif isinstance(v, _SHARED_TYPES):
            memo[id(v)] = v  # (no state the dry run could change: shared, not copied)
        elif isinstance(v, dict):
            for x in v.values():
                collect(x, depth + 1)
        elif isinstance(v, (list, tuple, set, frozenset)):
            for x in v:
                collect(x, depth + 1)
        elif isinstance(v, nn.Module):  # (a submodule, or one kept unregistered, e.g. a teacher: all of it)
            collect(vars(v), 0)
        elif hasattr(v, "__dict__") and not isinstance(v, type) and not callable(v):
            collect(vars(v), depth + 1)

    try:
        modules = list(model.modules())
        if any(isinstance(m, torch.jit.ScriptModule) for m in modules):  # (its deepcopy, in C++, ignores the memo)
            return None
        if any(getattr(h, "__closure__", None) for m in modules for h in _hook_functions(m)):
            return None
        collect(model, 0)
        clone = copy.deepcopy(model, memo)
    except Exception:  # (a module that cannot be deep-copied, a lazy parameter, a tensor subclass)
        return None
    real = {id(m) for m in modules}
    if any(id(m) in real for m in clone.modules()) or any(
            not t.is_meta for t in itertools.chain(clone.parameters(), clone.buffers())):
        return None
    return clone


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
    dtypes = _dtypes()
    if any(dtype not in dtypes for _, dtype in header.values()):
        return []
    file_sd = {k: torch.empty(shape, dtype=dtypes[dtype], device="meta") for k, (shape, dtype) in header.items()}
    # (a tensor whose elements share memory, such as an expanded view, cannot be copied into; a meta copy_ does not
    # check that)
    overlapping = sorted(k for k, t in model.state_dict().items()
                         if k in file_sd and isinstance(t, torch.Tensor) and torch._debug_has_internal_overlap(t) == 1)
    if overlapping:
        return [f"the model's {overlapping[:3]} share memory between their own elements (an expanded view): "
                "load_state_dict cannot copy into them"]
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
