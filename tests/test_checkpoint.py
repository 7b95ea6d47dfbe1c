"""Safe checkpoints: round trip, and clear errors for bad files."""
import json
import os

import pytest
import torch
from torch import nn

pytest.importorskip("safetensors")
import bitmm.checkpoint as ckpt  # noqa: E402
import bitmm.nn as bnn  # noqa: E402


def model(bits=1.58, seed=0):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(96, 64), nn.GELU(), nn.Linear(64, 64), nn.GELU(), nn.Linear(64, 10))
    return bnn.convert(m, mode="packed", weight_bits=bits, group_size=32 if bits == 2 else None)


@pytest.mark.parametrize("bits", [1.58, 2, 1])
def test_round_trip(tmp_path, bits):
    m = model(bits)
    path = str(tmp_path / "m.safetensors")
    ckpt.save(m, path)
    skeleton = bnn.convert(nn.Sequential(nn.Linear(96, 64), nn.GELU(), nn.Linear(64, 64), nn.GELU(),
                                         nn.Linear(64, 10)), mode="packed", weight_bits=bits,
                           group_size=32 if bits == 2 else None)
    x = torch.randn(5, 96)
    assert not torch.equal(skeleton(x), m(x))
    ckpt.load(skeleton, path)
    assert torch.equal(skeleton(x), m(x))


def test_truncated_file(tmp_path):
    path = str(tmp_path / "m.safetensors")
    ckpt.save(model(), path)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        ckpt.load(model(), path)


def test_garbage_and_pickle_files_are_rejected(tmp_path):
    path = str(tmp_path / "evil.safetensors")
    torch.save({"x": torch.zeros(3)}, path)  # a pickle, not safetensors: never unpickled
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        ckpt.load(model(), path)
    open(path, "wb").write(os.urandom(100))
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        ckpt.load(model(), path)


class _Payload:
    """Unpickling it opens (creates) the file `marker`: the side effect a pickle-loading path would run."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_payload_never_runs(tmp_path):
    import pickle
    control, marker = str(tmp_path / "control"), str(tmp_path / "marker")
    pickle.loads(pickle.dumps(_Payload(control))).close()  # the control: unpickling does run it
    assert os.path.exists(control)
    path = str(tmp_path / "evil.safetensors")
    with open(path, "wb") as fh:
        pickle.dump({"0.packed_weight": _Payload(marker)}, fh)
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        ckpt.load(model(), path)
    torch.save({"0.packed_weight": _Payload(marker)}, path)  # torch's zip container holding the same pickle
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        ckpt.load(model(), path)
    assert not os.path.exists(marker)


def _meta(path):
    from safetensors import safe_open
    with safe_open(path, framework="pt", device="cpu") as f:
        return dict(f.metadata())


def _resave(path, tensors=None, meta=None, drop=()):
    """Rewrites a saved checkpoint with some tensors / metadata entries replaced and the tensors named in `drop` left
    out (a tampered file that is still a well-formed safetensors container)."""
    import safetensors.torch as st
    from safetensors import safe_open
    with safe_open(path, framework="pt", device="cpu") as f:
        data = {k: f.get_tensor(k) for k in f.keys() if k not in drop}
        metadata = dict(f.metadata())
    data.update(tensors or {})
    metadata.update(meta or {})
    st.save_file(data, path, metadata=metadata)


def test_tampered_checkpoints_are_rejected(tmp_path):
    path = str(tmp_path / "m.safetensors")
    ckpt.save(model(), path)
    original = open(path, "rb").read()
    cases = [
        ({"meta": {"format_version": "2"}}, "format version '2', this bitmm reads version 1"),
        ({"meta": {"layers": "{not json"}}, "corrupt bitmm layer table"),
        ({"meta": {"layers": "[]"}}, "corrupt bitmm layer table .* a JSON list, not an object"),  # (valid JSON)
        ({"meta": {"layers": "null"}}, "corrupt bitmm layer table .* a JSON NoneType, not an object"),
        ({"meta": {"layers": "{}"}}, "bitmm layers differ from the model's"),
    ]
    for change, message in cases:
        open(path, "wb").write(original)
        _resave(path, **{"tensors" if "tensors" in change else "meta": next(iter(change.values()))})
        with pytest.raises(ValueError, match=message):
            ckpt.load(model(), path)
    from safetensors import safe_open
    with safe_open(path, framework="pt", device="cpu") as f:
        w = f.get_tensor("0.packed_weight")
        s = f.get_tensor("0.scale")
    bad = w.clone()
    bad[5, 2] = -1  # block 1 of row 5: lo and hi words all ones = code 3 at every weight
    bad[5, 3] = -1
    s_nan = s.clone().reshape(-1)
    s_nan[-1] = float("nan")
    for tensors, message in [
        ({"0.packed_weight": bad}, r"0.packed_weight holds an invalid ternary code 3 .* row 5, block 1"),
        ({"0.scale": s_nan.reshape(s.shape)}, r"0.scale.* is not finite"),
        ({"4.bias": torch.full((10,), float("nan"))}, r"4.bias is not finite"),
        ({"0.packed_weight": w[:-1].clone()}, "could not load tensors into the model"),  # one row short
    ]:
        open(path, "wb").write(original)
        _resave(path, tensors=tensors)
        skeleton = model()
        before = {k: v.clone() for k, v in skeleton.state_dict().items()}
        with pytest.raises(ValueError, match=message):
            ckpt.load(skeleton, path)
        assert all(torch.equal(before[k], v) for k, v in skeleton.state_dict().items())  # (rejected before copying)
    # a float64 scale finite as stored but Inf in the model's float32 buffer
    open(path, "wb").write(original)
    _resave(path, tensors={"0.scale": torch.full_like(s, 1e300, dtype=torch.float64)})
    with pytest.raises(ValueError, match=r"0.scale.* is not finite .* as torch.float32"):
        ckpt.load(model(), path)
    # strict=False: a layer left out of the file's layer table is still checked
    open(path, "wb").write(original)
    _resave(path, tensors={"0.packed_weight": bad}, meta={"layers": json.dumps(
        {k: v for k, v in json.loads(_meta(path)["layers"]).items() if k != "0"})})
    with pytest.raises(ValueError, match="invalid ternary code 3"):
        ckpt.load(model(), path, strict=False)
    open(path, "wb").write(original)
    ckpt.load(model(), path)  # the untampered file still loads


def test_mismatched_model_is_rejected(tmp_path):
    path = str(tmp_path / "m.safetensors")
    ckpt.save(model(1.58), path)
    with pytest.raises(ValueError, match="was saved as"):
        ckpt.load(model(2), path)


def test_non_bitmm_safetensors_is_rejected(tmp_path):
    import safetensors.torch as st
    path = str(tmp_path / "plain.safetensors")
    st.save_file({"w": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not a bitmm checkpoint"):
        ckpt.load(model(), path)


def test_metadata_may_not_replace_bitmm_keys(tmp_path):
    # metadata={"format": "pt"} (a common Hugging Face idiom) used to overwrite bitmm's own key, and load then
    # rejected the file it had just written as "not a bitmm checkpoint"
    m, path = model(), str(tmp_path / "m.safetensors")
    for key in ("format", "format_version", "layers"):
        with pytest.raises(ValueError, match=f"metadata keys \\['{key}'\\] are bitmm's own"):
            ckpt.save(m, path, metadata={key: "x"})
    ckpt.save(m, path, metadata={"author": "me"})
    ckpt.load(model(), path)


def test_non_strict_load_reports_what_it_left_out(tmp_path):
    m, path = model(), str(tmp_path / "m.safetensors")
    ckpt.save(m, path)
    # an unconverted model: nothing of the file fits (it used to "succeed" having loaded nothing)
    plain = nn.Sequential(nn.Linear(96, 64), nn.GELU(), nn.Linear(64, 64), nn.GELU(), nn.Linear(64, 10))
    before = {k: v.clone() for k, v in plain.state_dict().items()}
    with pytest.raises(ValueError, match="none of the file's 3 packed weights matches"):
        ckpt.load(plain, path, strict=False)
    assert all(torch.equal(v, before[k]) for k, v in plain.state_dict().items())  # (before anything is copied)
    # one layer more than the file: loads the rest, warning about the layer left out
    bigger = nn.Sequential(*model(), bnn.PackedLinear(10, 4))
    with pytest.warns(UserWarning, match="of the model's tensors not in the file"):
        ckpt.load(bigger, path, strict=False)
    x = torch.randn(3, 96)
    assert torch.equal(bigger[:5](x), m(x))


def test_a_bad_last_layer_leaves_the_earlier_layers_untouched(tmp_path):
    # The file's packed layers are all checked before anything is copied: load_state_dict alone would copy layers
    # 0 and 2 before it met the bad layer 4 (the skeleton's other seed makes a copy visible)
    path = str(tmp_path / "m.safetensors")
    ckpt.save(model(), path)
    from safetensors import safe_open
    with safe_open(path, framework="pt", device="cpu") as f:
        bad = f.get_tensor("4.packed_weight").clone()
    bad[3, 0] = bad[3, 1] = -1  # block 0 of row 3: lo and hi words all ones = code 3 at every weight
    _resave(path, tensors={"4.packed_weight": bad})
    skeleton = model(seed=1)
    before = {k: v.clone() for k, v in skeleton.state_dict().items()}
    with pytest.raises(ValueError, match=r"4.packed_weight holds an invalid ternary code 3 .* row 3, block 0"):
        ckpt.load(skeleton, path)
    assert all(torch.equal(before[k], v) for k, v in skeleton.state_dict().items())


@pytest.mark.parametrize("group_size", [32, None])
def test_one_bit_hqq_round_trip(tmp_path, group_size):
    # from_hqq(nbits=1): a binary layer with group-wise (or per-row) scales and offsets; the placeholder takes the
    # same group size (the layer table records it)
    from bitmm import quant
    torch.manual_seed(0)
    q, s, z = quant.hqq_quantize(torch.randn(16, 128), nbits=1, group_size=group_size)
    m = nn.Sequential(bnn.PackedLinear.from_hqq(q, s, z, nbits=1, group_size=group_size))
    path = str(tmp_path / "m.safetensors")
    ckpt.save(m, path)
    skeleton = nn.Sequential(bnn.PackedLinear(128, 16, weight_bits=1, group_size=group_size or 128, bias=False))
    x = torch.randn(3, 128)
    assert not torch.equal(skeleton(x), m(x))
    ckpt.load(skeleton, path)
    assert torch.equal(skeleton(x), m(x))
    with pytest.raises(ValueError, match="was saved as"):  # (a per tensor placeholder is another layer)
        ckpt.load(nn.Sequential(bnn.PackedLinear(128, 16, weight_bits=1, bias=False)), path)


def _with_tail(m, tail):
    return nn.Sequential(*m, *tail)


def test_key_and_shape_mismatches_are_rejected_before_anything_is_copied(tmp_path):
    # safetensors' load_model (load_state_dict under it) copies every tensor that fits, then raises: a strict load of
    # a file lacking a tensor, or a load whose plain layer's shape differs, left the model partly overwritten
    # (session 53's review).  Now the file's header is checked against the model first.
    path = str(tmp_path / "m.safetensors")
    torch.manual_seed(3)
    ckpt.save(_with_tail(model(), [nn.LayerNorm(10)]), path)
    cases = [  # (skeleton, strict, message)
        (lambda: _with_tail(model(seed=1), [nn.LayerNorm(10), nn.Linear(10, 4)]), True,
         r"2 of the model's tensors not in the file \(e.g. \['6.bias', '6.weight'\]\), 0 of the file's"),
        (lambda: model(seed=1), True, r"0 of the model's tensors not in the file .*, 2 of the file's not in the "
                                      r"model \(e.g. \['5.bias', '5.weight'\]\)"),
        (lambda: _with_tail(model(seed=1), [nn.LayerNorm(12)]), True,
         r"size mismatch for 5.weight: copying a param with shape torch.Size\(\[10\]\)"),
        (lambda: _with_tail(model(seed=1), [nn.LayerNorm(12)]), False, r"size mismatch for 5.bias"),
    ]
    for make, strict, message in cases:
        skeleton = make()
        before = {k: v.clone() for k, v in skeleton.state_dict().items()}
        with pytest.raises(ValueError, match=message):
            ckpt.load(skeleton, path, strict=strict)
        assert all(torch.equal(before[k], v) for k, v in skeleton.state_dict().items())
    # a model with the file's layers loads, strict, and the non-strict partial load still warns and loads what fits
    full = _with_tail(model(seed=1), [nn.LayerNorm(10)])
    ckpt.load(full, path)
    bigger = _with_tail(model(seed=1), [nn.LayerNorm(10), nn.Linear(10, 4)])
    with pytest.warns(UserWarning, match="2 of the model's tensors not in the file"):
        ckpt.load(bigger, path, strict=False)
    x = torch.randn(3, 96)
    assert torch.equal(bigger[:6](x), full(x))


def test_tied_tensors_load_strict_and_untied_ones_are_missing(tmp_path):
    # save_model writes one name per shared storage; a strict load excuses the model's other names of that storage
    # (as load_model does) and no other missing name
    def tied(tie=True):
        m = _with_tail(model(seed=1), [nn.Linear(10, 10), nn.Linear(10, 10)])
        if tie:
            m[6].weight = m[5].weight
        return m
    path = str(tmp_path / "m.safetensors")
    src = tied()
    ckpt.save(src, path)
    dst = tied()
    ckpt.load(dst, path)
    x = torch.randn(3, 96)
    assert torch.equal(dst(x), src(x)) and dst[6].weight is dst[5].weight
    untied = tied(tie=False)
    before = {k: v.clone() for k, v in untied.state_dict().items()}
    with pytest.raises(ValueError, match=r"1 of the model's tensors not in the file \(e.g. \['[56].weight'\]\)"):
        ckpt.load(untied, path)
    assert all(torch.equal(before[k], v) for k, v in untied.state_dict().items())


def _excuse_cache(module, keys):  # (a load post-hook: a derived buffer the file need not hold)
    for k in [k for k in keys.missing_keys if k.endswith("cache")]:
        keys.missing_keys.remove(k)


class _Extras(nn.Module):
    """load_state_dict's own rules a name / shape comparison would miss: a 0-dim parameter takes a (1,) tensor, extra
    state is not shape-checked, BatchNorm fills in a missing num_batches_tracked, and a post-hook may excuse a key."""
    def __init__(self, temp_shape=(), extra_len=5):
        super().__init__()
        self.temp = nn.Parameter(torch.ones(temp_shape))
        self.bn = nn.BatchNorm1d(4)
        self.register_buffer("cache", torch.zeros(3))
        self.extra = torch.arange(extra_len, dtype=torch.float32)
        self.register_load_state_dict_post_hook(_excuse_cache)

    def get_extra_state(self):
        return self.extra

    def set_extra_state(self, state):
        self.extra = state


def test_loads_what_load_state_dict_accepts(tmp_path):
    # The check before copying is load_state_dict itself on a meta copy of the model (session 54's review: a name /
    # shape comparison refused these five loads, which load_state_dict accepts)
    path = str(tmp_path / "m.safetensors")
    ckpt.save(nn.Sequential(model(), _Extras(temp_shape=(1,), extra_len=7)), path)
    _resave(path, drop=("1.bn.num_batches_tracked", "1.cache"))
    dst = nn.Sequential(model(seed=1), _Extras())
    ckpt.load(dst, path)
    assert dst[1].temp.shape == () and dst[1].extra.shape == (7,)
    x = torch.randn(3, 96)
    assert torch.equal(dst[0](x), model()(x))


def test_tied_in_the_model_but_not_in_the_file_is_rejected_before_copying(tmp_path):
    # load_model keeps one name of a storage the model shares and calls the file's other name unexpected, after
    # load_state_dict has copied everything (session 54's review); now found before anything is copied
    path = str(tmp_path / "m.safetensors")
    torch.manual_seed(5)
    ckpt.save(_with_tail(model(), [nn.Linear(10, 10), nn.Linear(10, 10)]), path)  # untied: both names saved
    dst = _with_tail(model(seed=1), [nn.Linear(10, 10), nn.Linear(10, 10)])
    dst[6].weight = dst[5].weight
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    with pytest.raises(ValueError, match=r"the file holds 1 tensor\(s\) the model ties to another name the file "
                                         r"holds too \(e.g. \['6.weight \(tied to 5.weight\)'\]\)"):
        ckpt.load(dst, path)
    assert all(torch.equal(before[k], v) for k, v in dst.state_dict().items())


class _SharedOnCopy(nn.Linear):
    def __deepcopy__(self, memo):  # (a module that is its own copy: the meta copy would share it with the model)
        return self


def test_dry_run_edge_cases(tmp_path):
    # Session 54's second review of the dry run: each of these once overwrote part of the model before an error,
    # refused a good file, ran a hook twice or copied real memory
    path = str(tmp_path / "m.safetensors")
    good = _with_tail(model(), [nn.Linear(10, 4)])
    ckpt.save(good, path)
    x = torch.randn(3, 96)
    # a model converted under inference_mode holds inference tensors, which load_state_dict cannot copy into
    with torch.inference_mode():
        inf = _with_tail(model(seed=1), [nn.Linear(10, 4)])
    before = {k: v.clone() for k, v in inf.state_dict().items()}
    with pytest.raises(ValueError, match="Inplace update to inference tensor"):
        ckpt.load(inf, path)
    assert all(torch.equal(before[k], v) for k, v in inf.state_dict().items())
    # a buffer whose elements share memory (an expanded view)
    exp = _with_tail(model(seed=1), [nn.Linear(10, 4)])
    exp[5].register_buffer("e", torch.zeros(1).expand(4))
    ckpt.save(_with_tail(model(), [nn.Linear(10, 4)]), str(tmp_path / "e.safetensors"))
    _resave(str(tmp_path / "e.safetensors"), tensors={"5.e": torch.ones(4)})
    before = {k: v.clone() for k, v in exp.state_dict().items()}
    with pytest.raises(ValueError, match=r"\['5.e'\] share memory between their own elements"):
        ckpt.load(exp, str(tmp_path / "e.safetensors"))
    assert all(torch.equal(before[k], v) for k, v in exp.state_dict().items())
    # a module that deep-copies to itself: no dry run (it would load into the real module), and the good file loads
    own = _with_tail(model(seed=1), [_SharedOnCopy(10, 4)])
    ckpt.load(own, path)
    assert torch.equal(own(x), good(x))
    # a load hook closing over the module runs once (the dry run is skipped for it), not twice
    calls = []
    hooked = _with_tail(model(seed=1), [nn.Linear(10, 4)])
    hooked[5].register_load_state_dict_post_hook(lambda mod, keys: calls.append(hooked[5]) and None)
    ckpt.load(hooked, path)
    assert len(calls) == 1 and torch.equal(hooked(x), good(x))
    # tensors a module keeps unregistered (a teacher module, a dict of lists) become meta tensors in the copy
    kept = _with_tail(model(seed=1), [nn.Linear(10, 4)])
    kept[5].__dict__["teacher"] = nn.Linear(64, 64)
    kept[5].cache = {"a": [torch.zeros(8)]}
    clone = ckpt._meta_copy(kept)
    assert clone.__dict__["_modules"]["5"].teacher.weight.is_meta and clone[5].cache["a"][0].is_meta
    assert not kept[5].teacher.weight.is_meta
