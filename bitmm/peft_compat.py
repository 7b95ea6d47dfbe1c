"""Hugging Face PEFT LoRA adapters on :class:`bitmm.nn.PackedLinear` layers.

PEFT only knows ``nn.Linear`` (and a few quantized layer types) out of the box;
its ``LoraConfig._register_custom_module`` hook ("experimental"
in PEFT's words) lets a LoRA layer class be supplied for any other module type.
This module supplies that class for bitmm's packed layers::

    from peft import LoraConfig, get_peft_model
    import bitmm.nn as bnn
    from bitmm.peft_compat import register_packed_lora

    model = bnn.convert(model, mode="packed", weight_bits=2, skip=("lm_head",))
    config = register_packed_lora(LoraConfig(r=8, target_modules=["q_proj", "v_proj"]))
    model = get_peft_model(model, config)   # base stays packed & frozen, only LoRA A/B train

Saving adapters with ``model.save_pretrained(dir)`` works as usual (only the LoRA
weights are written).  The custom-module mapping is not serialized, so reload with
``PeftModel.from_pretrained(packed_model, dir,
config=register_packed_lora(LoraConfig.from_pretrained(dir)))``.

``y = base(x) + lora_B(lora_A(dropout(x))) * scaling`` per active adapter, as in
PEFT's own ``lora.Linear``.  With one active adapter, no active dropout (p = 0 or
eval mode) and a base without activation quantization, the whole layer is the one
fused op ``bitmm::lora_linear`` (``bitmm.ops.lora_linear``), except for float32 x on CPU,
where it is the base on its prepacked CPU layouts plus the same adapter product (faster:
see :class:`bitmm.nn.PackedLoRALinear`); otherwise the base
forward is the one bitmm op and each adapter is added on top.  Adapters are
float32 (``torch.get_default_dtype()``) unless the model is cast; activations of
another dtype are cast for the adapter product only (the fused op takes float32
adapters with float16 / bfloat16 x directly and accumulates in float32).

Not supported (raise): DoRA and other LoRA variants, ``lora_bias``, and merging
(``merge`` / ``merge_and_unload``): adding a dense LoRA delta to a 1 - 2 bit
weight means re-quantizing it, which at these bit widths discards most of the
delta.  Keep adapters unmerged, or merge into the float model before converting.
``unload()`` (drop the adapters, keep the packed base) works.

Requires the optional dependency ``peft``.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn

try:
    from peft.tuners.lora import LoraConfig, LoraLayer
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError("bitmm.peft_compat needs the optional dependency peft: pip install peft") from e

from .nn import PackedLinear, _autocast_x, _packed_lora

__all__ = ["PackedLoraLinear", "register_packed_lora"]


class PackedLoraLinear(nn.Module, LoraLayer):
    """PEFT LoRA layer over a frozen :class:`~bitmm.nn.PackedLinear` (built by PEFT's
    custom-module dispatch; see :func:`register_packed_lora`)."""

    def __init__(self, base_layer: nn.Module, adapter_name: str, config: LoraConfig, r: int = 0,
                 lora_alpha: int = 1, **kwargs: Any) -> None:
        if config.lora_bias:
            raise ValueError(f"{type(self).__name__} does not support lora_bias")
        super().__init__()
        LoraLayer.__init__(self, base_layer, **kwargs)
        if not isinstance(self.get_base_layer(), PackedLinear):
            raise TypeError(f"{type(self).__name__}: base layer must be a bitmm PackedLinear, "
                            f"got {type(self.get_base_layer()).__name__}")
        self.fan_in_fan_out = False
        self._active_adapter = adapter_name
        self.update_layer(adapter_name, r, lora_alpha=lora_alpha, config=config, **kwargs)

    # ---- PEFT hooks ---------------------------------------------------------------
    def _get_in_out_features(self, module: nn.Module):
        # PEFT's generic lookup warns "Unsupported layer type" for custom layers.
        return module.in_features, module.out_features

    def _get_base_layer_device_and_dtype(self, base_layer):
        # The default reads base_layer.weight, which for PackedLinear dequantizes the
        # whole matrix (and is always float32).  Device from the packed buffer; dtype
        # from the bias when there is one (the model's float dtype), else leave the
        # adapters in their default dtype.
        if isinstance(base_layer, PackedLinear):
            dtype = None if base_layer.bias is None else base_layer.bias.dtype
            return base_layer.packed_weight.device, dtype
        return super()._get_base_layer_device_and_dtype(base_layer)

    def resolve_lora_variant(self, *, config: LoraConfig, **kwargs):
        if getattr(config, "use_dora", False):
            raise ValueError(f"{type(self).__name__} does not support DoRA")
        # LoraLayer's own variant table is {(): None}: any other requested variant raises.
        variant = super().resolve_lora_variant(config=config, **kwargs)
        if variant is not None:
            raise ValueError(f"{type(self).__name__} does not support LoRA variants ({type(variant).__name__})")
        return None

    # ---- merging is not supported ------------------------------------------------
    def merge(self, safe_merge: bool = False, adapter_names: Optional[list[str]] = None) -> None:
        raise NotImplementedError(
            "bitmm PackedLinear: merging a LoRA adapter into a packed 1-2 bit weight would re-quantize it and "
            "discard most of the adapter; keep it unmerged, or merge into the float model before bitmm.nn.convert")

    def unmerge(self) -> None:
        raise NotImplementedError("bitmm PackedLinear: adapters are never merged, so there is nothing to unmerge")

    def get_delta_weight(self, adapter: str) -> torch.Tensor:
        """Dense ``(out, in)`` LoRA delta ``B @ A * scaling`` (for inspection)."""
        A = self.lora_A[adapter].weight
        B = self.lora_B[adapter].weight
        return (B @ A) * self.scaling[adapter]

    # ---- forward -------------------------------------------------------------------
    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        self._check_forward_args(x, *args, **kwargs)
        if kwargs.pop("adapter_names", None) is not None:
            raise NotImplementedError(f"{type(self).__name__} does not support mixed-adapter batches (adapter_names)")
        x = _autocast_x(x)  # (the base and the adapters in the autocast dtype, as for PEFT's nn.Linear layers)
        fused = self._fused_forward(x, args, kwargs)
        if fused is not None:
            return fused
        result = self.base_layer(x, *args, **kwargs)
        if self.disable_adapters:
            return result
        out_dtype = result.dtype
        for active_adapter in self.active_adapters:
            if active_adapter not in self.lora_A.keys():
                continue
            lora_A = self.lora_A[active_adapter]
            lora_B = self.lora_B[active_adapter]
            dropout = self.lora_dropout[active_adapter]
            h = self._cast_input_dtype(x, lora_A.weight.dtype)
            result = result + lora_B(lora_A(dropout(h))) * self.scaling[active_adapter]
        return result.to(out_dtype)

    def _fused_forward(self, x: torch.Tensor, args, kwargs) -> Optional[torch.Tensor]:
        """The layer as one ``bitmm::lora_linear`` call, or None where that does not apply."""
        base = self.base_layer
        if self.disable_adapters or args or kwargs or not isinstance(base, PackedLinear) or base.act_bits is not None:
            return None
        if base._takes_transposed_backward(x, base.scale, base.offset):
            return None  # unfused: the base's grad_x then runs on its transposed weight
        active = [a for a in self.active_adapters if a in self.lora_A.keys()]
        if len(active) != 1:
            return None
        name = active[0]
        dropout = self.lora_dropout[name]
        if isinstance(dropout, nn.Dropout) and dropout.training and dropout.p > 0:
            return None
        if not isinstance(dropout, (nn.Dropout, nn.Identity)):
            return None
        return _packed_lora(base, x, base.packed_weight, base.scale, base.offset, base.bias,
                            self.lora_A[name].weight, self.lora_B[name].weight, self.scaling[name])

    def __repr__(self) -> str:
        return "lora." + super().__repr__()


def register_packed_lora(config: LoraConfig) -> LoraConfig:
    """Registers :class:`PackedLoraLinear` for :class:`~bitmm.nn.PackedLinear` targets in
    ``config`` (in place) and returns it, ready for ``peft.get_peft_model``.  Name the
    packed layers in ``target_modules`` (PEFT's ``"all-linear"`` only matches ``nn.Linear``)."""
    if not hasattr(config, "_register_custom_module"):
        raise RuntimeError("this PEFT version has no LoraConfig._register_custom_module")
    config._register_custom_module({PackedLinear: PackedLoraLinear})
    return config
