"""bitmm inside a real client: a tiny Hugging Face ``transformers`` Llama causal LM.

Built from a config (no download, no tokenizer; the network is blocked for these
tests), converted with :func:`bitmm.nn.convert` in QAT and packed modes, checked
against the same model with the fake-quantized weights in plain ``nn.Linear``
layers (logits and greedy ``generate``), saved / loaded with
:mod:`bitmm.checkpoint`, and fine-tuned with a PEFT LoRA adapter over the packed
layers (:mod:`bitmm.peft_compat`).  Skipped without ``transformers`` / ``peft``.
"""
from __future__ import annotations

import copy
import socket

import pytest
import torch
from torch import nn

transformers = pytest.importorskip("transformers")
import bitmm.nn as bnn  # noqa: E402

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")
PROJECTIONS = ATTENTION + MLP
NUM_LAYERS = 2
VOCAB = 128

# (mode, weight_bits, group_size)
SETTINGS = {
    "packed-int2-g32": ("packed", 2, 32),
    "packed-ternary": ("packed", 1.58, None),
    "qat-ternary": ("qat", 1.58, None),
}


# --------------------------------------------------------------------------------------
# fixtures and helpers
# --------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Everything here is local: any connection attempt fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The matrices here are tiny: intra-op threads only add synchronization (and on a
    busy CI machine, waiting for a descheduled peer thread costs ~16 ms per op)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def llama_config():
    # No EOS token: greedy generation always runs max_new_tokens steps.
    return transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128,
                                    num_hidden_layers=NUM_LAYERS, num_attention_heads=4, num_key_value_heads=2,
                                    max_position_embeddings=64, bos_token_id=None, eos_token_id=None,
                                    pad_token_id=0)


def make_llama(seed: int = 0) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return transformers.LlamaForCausalLM(llama_config()).eval()


@pytest.fixture(scope="module")
def float_model():
    """The float model; tests convert deep copies of it."""
    return make_llama()


@pytest.fixture
def input_ids():
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, VOCAB, (2, 12), generator=g)


def convert(model: nn.Module, setting: str) -> nn.Module:
    mode, bits, group_size = SETTINGS[setting]
    return bnn.convert(model, mode=mode, weight_bits=bits, group_size=group_size, skip=("lm_head",))


@pytest.fixture(params=list(SETTINGS))
def setting(request):
    return request.param


@pytest.fixture
def converted(float_model, setting):
    return convert(copy.deepcopy(float_model), setting)


def dense_reference(float_model: nn.Module, converted: nn.Module) -> nn.Module:
    """A copy of ``float_model`` whose Linear layers hold the weights the converted
    layers compute with (dequantized), run by plain ``F.linear``."""
    ref = copy.deepcopy(float_model)
    n = 0
    for name, m in converted.named_modules():
        if isinstance(m, bnn.PackedLinear):
            w = m.weight
        elif isinstance(m, bnn.BitLinear):
            w = m.quantized_weight()
        else:
            continue
        lin = ref.get_submodule(name)
        assert type(lin) is nn.Linear
        with torch.no_grad():
            lin.weight.copy_(w)
        n += 1
    assert n == NUM_LAYERS * len(PROJECTIONS)
    return ref


def expected_names():
    return sorted([f"model.layers.{i}.self_attn.{p}" for i in range(NUM_LAYERS) for p in ATTENTION]
                  + [f"model.layers.{i}.mlp.{p}" for i in range(NUM_LAYERS) for p in MLP])


def greedy(model: nn.Module, input_ids: torch.Tensor, n: int = 5) -> torch.Tensor:
    with torch.no_grad():
        return model.generate(input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=n,
                              do_sample=False)


# --------------------------------------------------------------------------------------
# convert: report, logits, generate
# --------------------------------------------------------------------------------------
def test_report_lists_projections_and_skips_lm_head(converted, setting):
    report = converted.bitmm_report
    layer_type = bnn.PackedLinear if SETTINGS[setting][0] == "packed" else bnn.BitLinear
    assert report.mode == SETTINGS[setting][0]
    assert sorted(report.replaced) == expected_names()
    assert report.skipped == ["lm_head"]
    assert type(converted.lm_head) is nn.Linear
    for name in report.replaced:
        assert type(converted.get_submodule(name)) is layer_type
    assert not any(type(m) is nn.Linear for n, m in converted.named_modules() if n != "lm_head")
    if layer_type is bnn.PackedLinear:
        assert report.bytes_after < report.bytes_before
    else:  # QAT keeps the latent float weights
        assert report.bytes_after == report.bytes_before


def test_logits_match_dense_fake_quantized_reference(float_model, converted, input_ids):
    ref = dense_reference(float_model, converted)
    with torch.no_grad():
        out = converted(input_ids).logits
        want = ref(input_ids).logits
        original = float_model(input_ids).logits
    assert out.shape == (*input_ids.shape, VOCAB)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, want, rtol=1e-4, atol=1e-4)
    # ... and the quantization really happened: far from the float model.
    assert (out - original).abs().max() > 1e-2


def test_greedy_generate_matches_dense_reference(float_model, converted, input_ids):
    ref = dense_reference(float_model, converted)
    tokens = greedy(converted, input_ids)
    assert tokens.shape == (input_ids.shape[0], input_ids.shape[1] + 5)
    assert torch.equal(tokens[:, : input_ids.shape[1]], input_ids)
    assert torch.equal(tokens, greedy(ref, input_ids))


# --------------------------------------------------------------------------------------
# QAT
# --------------------------------------------------------------------------------------
def test_qat_train_step_updates_latent_weights(float_model, input_ids):
    model = convert(copy.deepcopy(float_model), "qat-ternary").train()
    bitlinears = {n: m for n, m in model.named_modules() if isinstance(m, bnn.BitLinear)}
    before = {n: m.weight.detach().clone() for n, m in bitlinears.items()}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    loss = model(input_ids=input_ids, labels=input_ids).loss
    assert torch.isfinite(loss)
    loss.backward()
    for n, m in bitlinears.items():
        assert m.weight.grad is not None and torch.isfinite(m.weight.grad).all(), n
        assert m.weight.grad.abs().sum() > 0, n
    opt.step()
    for n, m in bitlinears.items():
        assert not torch.equal(m.weight, before[n]), n
    with torch.no_grad():
        assert torch.isfinite(model(input_ids=input_ids, labels=input_ids).loss)


def test_qat_then_packed_freezes_the_same_model(float_model, input_ids):
    qat = convert(copy.deepcopy(float_model), "qat-ternary")
    with torch.no_grad():
        want = qat(input_ids).logits
    packed = bnn.convert(qat, mode="packed", skip=("lm_head",))
    assert sorted(packed.bitmm_report.replaced) == expected_names()
    assert all(isinstance(packed.get_submodule(n), bnn.PackedLinear) for n in expected_names())
    with torch.no_grad():
        torch.testing.assert_close(packed(input_ids).logits, want, rtol=0, atol=1e-5)


# --------------------------------------------------------------------------------------
# checkpoint
# --------------------------------------------------------------------------------------
def test_checkpoint_round_trip_into_fresh_skeleton(converted, setting, input_ids, tmp_path):
    pytest.importorskip("safetensors")
    import bitmm.checkpoint as ckpt

    path = str(tmp_path / "tiny_llama.safetensors")
    ckpt.save(converted, path)
    skeleton = convert(make_llama(seed=123), setting)  # same layout, other weights
    with torch.no_grad():
        want = converted(input_ids).logits
        assert not torch.allclose(skeleton(input_ids).logits, want)
        ckpt.load(skeleton, path)
        assert torch.equal(skeleton(input_ids).logits, want)
    assert torch.equal(greedy(skeleton, input_ids), greedy(converted, input_ids))


# --------------------------------------------------------------------------------------
# PEFT LoRA over the packed layers
# --------------------------------------------------------------------------------------
@pytest.fixture
def peft_model(float_model, input_ids):
    """(logits of the packed model before LoRA, the PEFT model around it)."""
    peft = pytest.importorskip("peft")
    from bitmm.peft_compat import register_packed_lora

    packed = convert(copy.deepcopy(float_model), "packed-int2-g32")
    with torch.no_grad():
        packed_logits = packed(input_ids).logits
    config = register_packed_lora(peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0,
                                                  target_modules=list(PROJECTIONS)))
    return packed_logits, peft.get_peft_model(packed, config)


def _frozen_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" not in k}


@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
def test_peft_lora_trains_only_adapters(peft_model, input_ids):
    from bitmm.peft_compat import PackedLoraLinear

    packed_logits, model = peft_model
    lora_layers = {n: m for n, m in model.named_modules() if isinstance(m, PackedLoraLinear)}
    assert len(lora_layers) == NUM_LAYERS * len(PROJECTIONS)
    assert all(isinstance(m.get_base_layer(), bnn.PackedLinear) for m in lora_layers.values())

    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert len(trainable) == 2 * len(lora_layers)
    assert all(".lora_A." in n or ".lora_B." in n for n in trainable)

    # B starts at zero: the adapted model starts equal to the packed one.
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=input_ids).logits, packed_logits, rtol=0, atol=1e-6)

    frozen = _frozen_state(model)
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    losses = []
    for _ in range(6):
        loss = model(input_ids=input_ids, labels=input_ids).loss
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.05, losses

    after = _frozen_state(model)
    assert after.keys() == frozen.keys()
    assert any(k.endswith("packed_weight") for k in after)
    for k in frozen:
        assert torch.equal(after[k], frozen[k]), k

    model.eval()
    with torch.no_grad():
        adapted = model(input_ids=input_ids).logits
        with model.disable_adapter():
            base = model(input_ids=input_ids).logits
    torch.testing.assert_close(base, packed_logits, rtol=0, atol=1e-6)
    assert not torch.allclose(adapted, base)
    assert greedy(model, input_ids).shape == (input_ids.shape[0], input_ids.shape[1] + 5)


@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
def test_peft_lora_over_transposed_backward_matches_default(float_model, input_ids):
    # enable_transposed_backward on a PEFT model: the PEFT layer leaves its fused op while x
    # needs a gradient, the bases build W^T, and the adapters' gradients match the default path.
    peft = pytest.importorskip("peft")
    from bitmm.peft_compat import register_packed_lora

    grads = []
    for transposed in (False, True):
        packed = convert(copy.deepcopy(float_model), "packed-ternary")
        config = register_packed_lora(peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, init_lora_weights=False,
                                                      target_modules=list(PROJECTIONS)))
        torch.manual_seed(0)
        model = peft.get_peft_model(packed, config)
        assert bnn.enable_transposed_backward(model, transposed) == NUM_LAYERS * len(PROJECTIONS)
        model.train()
        model(input_ids=input_ids, labels=input_ids).loss.backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.requires_grad})
        made = [m for m in model.modules() if isinstance(m, bnn.PackedLinear) and "_transposed" in m.__dict__]
        assert bool(made) == transposed
    assert grads[0].keys() == grads[1].keys()
    for n in grads[0]:
        torch.testing.assert_close(grads[1][n], grads[0][n], rtol=1e-4, atol=1e-6, msg=n)


@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
def test_peft_merge_refused_unload_keeps_packed_base(peft_model, input_ids):
    packed_logits, model = peft_model
    with pytest.raises(NotImplementedError, match="re-quantize"):
        model.merge_and_unload()
    base = model.unload()
    for name in expected_names():
        assert type(base.get_submodule(name)) is bnn.PackedLinear
    with torch.no_grad():
        assert torch.equal(base(input_ids).logits, packed_logits)


@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
def test_peft_adapter_save_pretrained_round_trip(float_model, input_ids, tmp_path):
    peft = pytest.importorskip("peft")
    from bitmm.peft_compat import register_packed_lora

    def packed():
        return convert(copy.deepcopy(float_model), "packed-ternary")

    config = register_packed_lora(peft.LoraConfig(r=4, target_modules=list(PROJECTIONS), init_lora_weights=False))
    model = peft.get_peft_model(packed(), config)  # random A and B: a non-trivial adapter
    with torch.no_grad():
        want = model(input_ids=input_ids).logits
    model.save_pretrained(str(tmp_path))
    # The custom-module mapping is not serialized: register it on the loaded config.
    loaded_config = register_packed_lora(peft.LoraConfig.from_pretrained(str(tmp_path)))
    loaded = peft.PeftModel.from_pretrained(packed(), str(tmp_path), config=loaded_config)
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=input_ids).logits, want)
