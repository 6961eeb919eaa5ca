"""Malformed and foreign checkpoints: every reader refuses them with a CheckpointError that says what is wrong.

Safetensors headers with impossible shapes, stored specs nested thousands deep, pickles holding Python
objects, reference-layout keys with 5,000-digit indices, tensors saved from the meta device, tensors
of another dtype kind; and timm train.py's checkpoints, whose ``args`` is an ``argparse.Namespace``.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys

import pytest
import torch
from conftest import tiny

import archspec
from archspec.checkpoint import CheckpointError, load_file, load_state, read_file, save_file, warm_start
from archspec.families import get_layout, layouts
from archspec.weights_file import shown


def _plan():
    return archspec.plan(archspec.validate(tiny()))


def _model(device: str = "cpu", seed: int = 0):
    return archspec.build(_plan(), device=device, seed=seed)


@pytest.fixture
def no_torch_load(monkeypatch):
    """torch.load fails the test: a refused file must be refused before anything is inflated."""

    def refuse(*args, **kwargs):
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", refuse)


# --- safetensors headers ------------------------------------------------------------------------


def _safetensors(path, header_text: str, payload: bytes = b"") -> None:
    raw = header_text.encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + payload)


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ('{"w": {"dtype": "F32", "shape": [1.5, 2], "data_offsets": [0, 0]}}', "the size 1.5 in its shape"),
        ('{"w": {"dtype": "F32", "shape": [Infinity], "data_offsets": [0, 0]}}', "the size inf in its shape"),
        ('{"w": {"dtype": "F32", "shape": [-Infinity], "data_offsets": [0, 0]}}', "the size -inf in its shape"),
        ('{"w": {"dtype": "F32", "shape": [NaN, 1], "data_offsets": [0, 0]}}', "the size nan in its shape"),
        ('{"w": {"dtype": "F32", "shape": [1e400], "data_offsets": [0, 0]}}', "the size inf in its shape"),
        ('{"w": {"dtype": "F32", "shape": [2, -3], "data_offsets": [0, 0]}}', "the size -3 in its shape"),
        ('{"w": {"dtype": "F32", "shape": [true], "data_offsets": [0, 0]}}', "the size True in its shape"),
        ('{"w": {"dtype": "F32", "shape": ["2"], "data_offsets": [0, 0]}}', "the size '2' in its shape"),
        ('{"w": {"dtype": "X9", "shape": [0.5], "data_offsets": [0, 0]}}', "the size 0.5 in its shape"),
    ],
    ids=["float", "infinity", "minus-infinity", "nan", "overflow", "negative", "bool", "string", "unknown-dtype"],
)
def test_a_safetensors_shape_must_hold_whole_sizes(tmp_path, no_torch_load, header, problem):
    path = tmp_path / "w.safetensors"
    _safetensors(path, header)
    with pytest.raises(CheckpointError) as info:
        read_file(path)
    assert (str(info.value), info.value.code) == (
        f"{path}: not a readable safetensors file (tensor 'w' has {problem}; sizes are whole numbers from 0)",
        "AS501",
    )


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("[1, 2]", "its header is a JSON array, not an object"),
        ('"w"', "its header is a JSON string, not an object"),
        ("null", "its header is a JSON null, not an object"),
        ('{"w": [1, 2]}', "tensor 'w' is described by a JSON array, not an object"),
        ('{"w": 7}', "tensor 'w' is described by a JSON number, not an object"),
        ('{"w": {"dtype": 5, "shape": [1]}}', "tensor 'w' has the dtype 5, not a string"),
        ('{"w": {"dtype": ["F32"], "shape": [1]}}', "tensor 'w' has the dtype ['F32'], not a string"),
        ('{"w": {"shape": [1]}}', "tensor 'w' has the dtype None, not a string"),
        ('{"w": {"dtype": "F32"}}', "tensor 'w' has the shape None, not a list"),
        ('{"w": {"dtype": "F32", "shape": {"0": 1}}}', "tensor 'w' has the shape {'0': 1}, not a list"),
        ('{"a\\nb": {"dtype": "F32", "shape": 1}}', "tensor 'a\\nb' has the shape 1, not a list"),
        ("[" * 100_000 + "]" * 100_000, "a malformed header: RecursionError"),
        ('{"w": ', "a malformed header: JSONDecodeError"),
        ('{"w": {"dtype": "F32", "shape": [' + "9" * 5000 + "]}}", "a malformed header: ValueError"),
    ],
    ids=[
        "array",
        "string",
        "null",
        "entry-array",
        "entry-number",
        "dtype-number",
        "dtype-list",
        "dtype-missing",
        "shape-missing",
        "shape-object",
        "name-escaped",
        "nested",
        "truncated",
        "long-number",
    ],
)
def test_a_malformed_safetensors_header_is_named(tmp_path, no_torch_load, header, problem):
    path = tmp_path / "w.safetensors"
    _safetensors(path, header)
    with pytest.raises(CheckpointError) as info:
        read_file(path)
    assert (str(info.value), info.value.code) == (f"{path}: not a readable safetensors file ({problem})", "AS501")


def test_a_safetensors_header_of_astronomical_size_is_refused_by_its_size(tmp_path, no_torch_load):
    path = tmp_path / "w.safetensors"
    _safetensors(path, json.dumps({"w": {"dtype": "F64", "shape": [10**200, 10**200], "data_offsets": [0, 0]}}))
    with pytest.raises(CheckpointError) as info:
        read_file(path)
    assert str(info.value) == (
        f"{path}: not a readable safetensors file (its header declares about 10^401 bytes of tensors, "
        "the file holds 0 bytes)"
    )


# --- stored specs -------------------------------------------------------------------------------


def _archspec_checkpoint(tmp_path, spec: object, fingerprint: object = "0123456789abcdef"):
    """An archspec checkpoint of the tiny model whose stored spec and fingerprint are replaced."""
    path = tmp_path / "w.pt"
    save_file(_model(), _plan(), path)
    payload = torch.load(path, weights_only=True)
    payload.update(spec=spec, spec_fingerprint=fingerprint)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20_000))  # pickling a spec nested 4,000 deep recurses that far
    try:
        torch.save(payload, path)
    finally:
        sys.setrecursionlimit(limit)
    return path


def _nested(depth: int) -> dict:
    spec: dict = {}
    for _ in range(depth):
        spec = {"a": spec}
    return spec


def test_a_stored_spec_nested_thousands_deep_is_refused(tmp_path):
    path = _archspec_checkpoint(tmp_path, _nested(4000))
    assert 30_000 < path.stat().st_size < 100_000
    checkpoint = read_file(path)  # torch's weights-only unpickler keeps its own stack: no RecursionError
    assert isinstance(checkpoint["spec"], dict)
    with pytest.raises(CheckpointError) as info:
        load_file(_model(), path, plan=_plan())
    assert (str(info.value), info.value.code) == (
        f"{path}: the stored spec nests too deeply (past 64 levels, at 'a.a.a.a'…); a spec is a few levels deep",
        "AS501",
    )
    load_file(_model(), path)  # without a spec to compare, the weights load


def test_a_stored_spec_of_ordinary_depth_is_still_compared(tmp_path):
    spec = tiny()
    spec["stages"][1]["depth"] = 3
    path = _archspec_checkpoint(tmp_path, spec)
    with pytest.raises(CheckpointError) as info:
        load_file(_model(), path, plan=_plan())
    assert str(info.value).endswith("checkpoint → this spec:\n  stages[1].depth: 3 → 2")


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"stages": [{"dim": torch.zeros(1)}]}, "holds a torch.Tensor at 'stages[0].dim'; a spec is plain data"),
        ({"name": {3, 4}}, "holds a builtins.set at 'name'; a spec is plain data"),
        ({"name": b"x"}, "holds a builtins.bytes at 'name'; a spec is plain data"),
        ({"stages": {7: 1}}, "has the key 7 (int) at 'stages'; a spec's keys are strings"),
        ({"stages": {("a",): 1}}, "has the key ('a',) (tuple) at 'stages'; a spec's keys are strings"),
    ],
    ids=["tensor", "set", "bytes", "int-key", "tuple-key"],
)
def test_a_stored_spec_must_be_plain_data(tmp_path, spec, problem):
    path = _archspec_checkpoint(tmp_path, spec)
    with pytest.raises(CheckpointError) as info:
        load_file(_model(), path, plan=_plan())
    assert (str(info.value), info.value.code) == (f"{path}: the stored spec {problem}", "AS501")


def test_a_stored_fingerprint_must_be_a_string(tmp_path):
    path = _archspec_checkpoint(tmp_path, tiny(), fingerprint=[1, 2])
    with pytest.raises(CheckpointError) as info:
        load_file(_model(), path, plan=_plan())
    assert (str(info.value), info.value.code) == (
        f"{path}: its spec_fingerprint is [1, 2] (list), not a string",
        "AS501",
    )


# --- pickles holding Python objects -------------------------------------------------------------


class _OwnDict(collections.OrderedDict):
    """An OrderedDict subclass: a global the weights-only unpickler does not build."""


def _refused(tmp_path, payload) -> CheckpointError:
    path = tmp_path / "x.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError) as info:
        read_file(path)
    message = str(info.value)
    assert info.value.code == "AS501"
    assert "weights_only" not in message and "safe_globals" not in message and "http" not in message
    assert "\x1b" not in message
    return info.value


@pytest.mark.parametrize(
    ("payload", "name"),
    [
        ({"state_dict": _OwnDict(w=torch.zeros(1))}, f"{__name__}._OwnDict"),
        ({"args": argparse.Namespace(fn=print)}, "builtins.print"),
        ({"args": argparse.Namespace(parse=json.loads)}, "json.loads"),
        ({"hook": sys.exit}, "sys.exit"),
    ],
    ids=["ordereddict-subclass", "namespace-with-builtin", "namespace-with-function", "blocked-module"],
)
def test_a_python_object_is_refused_without_torchs_advice(tmp_path, payload, name):
    error = _refused(tmp_path, payload)
    assert str(error) == (
        f"{tmp_path / 'x.pt'}: not a readable checkpoint: it holds the Python object {name}, which a weights-only "
        "load does not run"
    )


PLAIN = "only plain values are read from one (strings, numbers, booleans, None, and lists, tuples and dicts of them)"


@pytest.mark.parametrize(
    ("namespace", "problem"),
    [
        (argparse.Namespace(device=torch.device("cpu")), "whose 'device' is a torch.device"),
        (argparse.Namespace(dtype=torch.float16), "whose 'dtype' is a torch.dtype"),
        (argparse.Namespace(mean=[0.5, torch.zeros(1)]), "whose 'mean' holds a torch.Tensor"),
        (argparse.Namespace(kind=collections.OrderedDict), "whose 'kind' is the class collections.OrderedDict"),
        (argparse.Namespace(size=torch.Size([2])), None),  # a tuple subclass torch builds: read as a tuple
        (argparse.Namespace(z=3 + 4j), "whose 'z' is a complex"),
    ],
    ids=["device", "dtype", "tensor-in-list", "class", "size", "complex"],
)
def test_a_namespace_takes_plain_values_only(tmp_path, namespace, problem):
    if problem is None:
        path = tmp_path / "x.pt"
        torch.save({"args": namespace}, path)
        assert read_file(path)["args"] == {"size": (2,)}
        return
    error = _refused(tmp_path, {"args": namespace})
    assert (
        str(error)
        == f"{tmp_path / 'x.pt'}: not a readable checkpoint: it holds an argparse.Namespace {problem}; {PLAIN}"
    )


def test_a_namespace_that_holds_itself_is_refused(tmp_path):
    loop: list = []
    loop.append(loop)
    error = _refused(tmp_path, {"args": argparse.Namespace(loop=loop)})
    assert str(error) == (
        f"{tmp_path / 'x.pt'}: not a readable checkpoint: it holds an argparse.Namespace whose 'loop' nests past "
        f"32 levels; {PLAIN}"
    )


def test_another_unpickling_refusal_keeps_only_torchs_reason(tmp_path):
    path = tmp_path / "x.pt"
    with pytest.warns(UserWarning, match="pickle protocol 4"):
        torch.save({"w": "x"}, path, pickle_protocol=4)
        with pytest.raises(CheckpointError) as info:
            read_file(path)
    assert (
        str(info.value)
        == f"{path}: not a readable checkpoint: a weights-only load refused it (Unsupported operand 149)"
    )


# --- timm train.py checkpoints ------------------------------------------------------------------


def _timm_args() -> argparse.Namespace:
    """Options as timm's train.py parses and amends them (strings, numbers, None, lists, a dict)."""
    return argparse.Namespace(
        data_dir="/data/imagenet",
        dataset="",
        model="spectformer_h_s",
        pretrained=False,
        initial_checkpoint="",
        resume="",
        num_classes=5,
        gp=None,
        img_size=None,
        input_size=None,
        crop_pct=None,
        mean=[0.485, 0.456, 0.406],
        std=(0.229, 0.224, 0.225),
        interpolation="",
        batch_size=128,
        model_kwargs={},
        opt="adamw",
        opt_eps=None,
        opt_betas=None,
        momentum=0.9,
        weight_decay=0.05,
        clip_grad=None,
        layer_decay=None,
        sched="cosine",
        lr=None,
        lr_base=0.1,
        lr_noise=None,
        epochs=300,
        decay_milestones=[90, 180, 270],
        scale=[0.08, 1.0],
        ratio=[3.0 / 4.0, 4.0 / 3.0],
        aa="rand-m9-mstd0.5-inc1",
        mixup=0.8,
        amp=True,
        amp_dtype="float16",
        device="cuda:0",
        prefetcher=True,
        distributed=False,
        world_size=1,
        rank=0,
        local_rank=0,
        grad_accum_steps=1,
    )


def _timm_checkpoint(tmp_path, state: dict[str, torch.Tensor], args: argparse.Namespace):
    """A checkpoint laid out as timm's CheckpointSaver writes it (train.py with an EMA and AMP)."""
    params = [torch.nn.Parameter(torch.randn(3, 2)), torch.nn.Parameter(torch.zeros(3))]
    optimizer = torch.optim.AdamW(params, lr=0.1, weight_decay=0.05)
    params[0].sum().backward()
    optimizer.step()
    payload = {
        "epoch": 12,
        "arch": args.model,
        "state_dict": state,
        "optimizer": optimizer.state_dict(),
        "version": 2,
        "args": args,
        "amp_scaler": {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000},
        "state_dict_ema": {key: value.clone() for key, value in state.items()},
        "metric": 81.25,
    }
    path = tmp_path / "model_best.pth.tar"
    torch.save(payload, path)
    return path


def test_a_timm_train_checkpoint_loads(tmp_path):
    donor = _model(seed=7)
    # The block mixers under ``attn``: the official SpectFormer-H layout, converted on load.
    official = {key.replace(".m.", ".attn.", 1): value for key, value in donor.state_dict().items()}
    path = _timm_checkpoint(tmp_path, official, _timm_args())
    checkpoint = read_file(path)
    assert type(checkpoint["args"]) is dict and checkpoint["args"] == vars(_timm_args())
    assert checkpoint["args"]["std"] == (0.229, 0.224, 0.225) and checkpoint["args"]["mean"] == [0.485, 0.456, 0.406]
    assert (checkpoint["arch"], checkpoint["epoch"], checkpoint["metric"]) == ("spectformer_h_s", 12, 81.25)
    assert checkpoint["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    model = _model()
    assert load_file(model, path) == "spectformer"
    assert torch.equal(model.state_dict()["block2.0.m.q.weight"], donor.state_dict()["block2.0.m.q.weight"])
    copied = len(donor.state_dict())
    assert (
        warm_start(_model(), checkpoint).report() == f"copied {copied} tensors (converted from the spectformer layout)"
    )


def test_a_timm_train_checkpoint_with_an_object_in_its_args_stays_refused(tmp_path):
    args = _timm_args()
    args.collate = print
    path = _timm_checkpoint(tmp_path, dict(_model().state_dict()), args)
    with pytest.raises(CheckpointError) as info:
        load_file(_model(), path)
    assert str(info.value) == (
        f"{path}: not a readable checkpoint: it holds the Python object builtins.print, which a weights-only load "
        "does not run"
    )


def test_reading_leaves_torchs_allow_list_as_it_was(tmp_path):
    path = _timm_checkpoint(tmp_path, dict(_model().state_dict()), _timm_args())
    before = set(torch.serialization.get_safe_globals())
    read_file(path)
    assert set(torch.serialization.get_safe_globals()) == before
    with pytest.raises(Exception, match=r"argparse\.Namespace"):
        torch.load(path, weights_only=True)  # outside read_file, torch still refuses the Namespace


def test_a_torch_without_named_safe_globals_still_refuses_the_namespace_by_name(tmp_path, monkeypatch):
    """Before torch 2.6, ``safe_globals`` took no ``(class, "module.name")`` pairs: nothing is stood in."""
    import contextlib

    from archspec import checkpoint

    @contextlib.contextmanager
    def older(globals_):
        if any(isinstance(item, tuple) for item in globals_):
            raise AttributeError("'tuple' object has no attribute '__module__'")
        yield

    monkeypatch.setattr(torch.serialization, "safe_globals", older)
    checkpoint._stand_ins.cache_clear()
    try:
        assert checkpoint._stand_ins() == []
        path = _timm_checkpoint(tmp_path, dict(_model().state_dict()), _timm_args())
        with pytest.raises(CheckpointError) as info:
            read_file(path)
        assert str(info.value) == (
            f"{path}: not a readable checkpoint: it holds the Python object argparse.Namespace, which a weights-only "
            "load does not run"
        )
        bare = tmp_path / "bare.pt"
        torch.save(_model().state_dict(), bare)
        load_file(_model(), bare)
    finally:
        checkpoint._stand_ins.cache_clear()


# --- reference-layout keys with overlong indices ------------------------------------------------

LONG = "7" * 5000


def _long_index_message(key: str, digits: int = 5000) -> str:
    return (
        f"the checkpoint key {shown(key)} holds an index of {digits:,} digits; stage and block indices have at most 6"
    )


@pytest.mark.parametrize(
    "key",
    [
        f"blocks.{LONG}.filter.complex_weight",
        f"blocks.{LONG}.0.filter.complex_weight",
        f"blocks.0.{LONG}.filter.complex_weight",
    ],
    ids=["gfnet", "gfnet-h-stage", "gfnet-h-block"],
)
def test_a_gfnet_key_with_a_5000_digit_index_is_refused(key):
    state = {**_model().state_dict(), key: torch.zeros(1)}
    with pytest.raises(CheckpointError) as info:
        load_state(_model(), state)
    assert (str(info.value), info.value.code) == (_long_index_message(key), "AS501")


@pytest.mark.parametrize("layout", sorted(layout.name for layout in layouts()))
def test_every_layout_refuses_an_overlong_index(layout):
    key = f"stages.{LONG}.blocks.0.weight"
    with pytest.raises(CheckpointError) as info:
        get_layout(layout).convert({"stem.0.weight": torch.zeros(1), key: torch.zeros(1)})
    assert str(info.value) == _long_index_message(key)


@pytest.mark.parametrize(
    ("module", "key"),
    [
        ("gfnet", "blocks.1234567.0.filter.complex_weight"),
        ("timm_convnext", "stages.1234567.blocks.0.conv_dw.weight"),
        ("timm_swin", "layers.1234567.blocks.0.attn.qkv.weight"),
        ("timm_maxvit", "stages.0.blocks.1234567.conv.conv1_1x1.weight"),
        ("timm_metaformer", "stages.1234567.blocks.0.mlp.fc1.weight"),
        ("timm_coatnet", "stages.1234567.blocks.0.conv1_1x1.weight"),
        ("timm_efficientnet", "blocks.1234567.0.conv_pw.weight"),
        ("timm_pvt_v2", "stages.1234567.blocks.0.attn.q.weight"),
        ("timm_regnet", "s1.b1234567.conv1.conv.weight"),
    ],
)
def test_each_converter_parses_indices_of_at_most_six_digits(module, key):
    """The converters themselves, called directly, bound the indices they read as numbers."""
    import importlib

    family = importlib.import_module(f"archspec.families.{module}")
    convert = family._convert_pyramid if module == "gfnet" else family.convert
    with pytest.raises(CheckpointError) as info:
        convert({key: torch.zeros(1)})
    assert str(info.value) == _long_index_message(key, 7)
    six = key.replace("1234567", "123456")
    assert len(convert({six: torch.zeros(1)})) == 1


def test_an_index_of_other_digits_than_ascii_is_refused():
    from archspec.families.timm_convnext import convert

    key = "stages.\u0663.blocks.0.conv_dw.weight"  # ARABIC-INDIC DIGIT THREE, which int() reads as 3
    with pytest.raises(CheckpointError) as info:
        convert({key: torch.zeros(1)})
    assert str(info.value) == f"the checkpoint key {shown(key)} holds the index '\u0663', not ASCII digits"


def test_a_layout_that_cannot_reshape_a_tensor_says_so():
    key = "stages.0.blocks.0.attn.qkv.weight"
    state = {
        "stages.0.blocks.0.shortcut.expand.weight": torch.zeros(1),
        "stages.0.blocks.0.se_early.fc1.weight": torch.zeros(1),
        key: torch.zeros(7, 4, 1, 1),
        "stages.0.blocks.0.attn.rel_pos.relative_position_bias_table": torch.zeros(9, 2),
    }
    with pytest.raises(CheckpointError) as info:
        get_layout("timm-coatnet").convert(state)
    assert str(info.value) == (
        "cannot convert the checkpoint from the timm-coatnet layout: "
        "shape '[2, 3, 1, 4]' is invalid for input of size 28"
    )
    del state["stages.0.blocks.0.attn.rel_pos.relative_position_bias_table"]
    with pytest.raises(CheckpointError) as info:
        get_layout("timm-coatnet").convert(state)
    assert str(info.value) == "block1.0.m.qkv.weight: no relative-position table beside it to count its heads from"


# --- tensors saved from the meta device ---------------------------------------------------------


def test_a_checkpoint_saved_from_the_meta_device_is_refused(tmp_path, capsys):
    path = tmp_path / "meta.pt"
    meta = _model("meta")
    torch.save(meta.state_dict(), path)
    count = len(meta.state_dict())
    message = (
        f"the checkpoint holds no data: saved from the meta device, its {count} tensors have shapes and no values "
        "(the first: 'patch_embed1.proj.weight'); save the weights of a model built on cpu or cuda"
    )
    for load, named in ((load_file, True), (lambda model, path: warm_start(model, read_file(path)), False)):
        model = _model()
        before = model.state_dict()["head.weight"].clone()
        with pytest.raises(CheckpointError) as info:
            load(model, path)
        assert (str(info.value), info.value.code) == (f"{path}: {message}" if named else message, "AS501")
        assert torch.equal(model.state_dict()["head.weight"], before)
    partly = {**_model().state_dict(), "head.bias": torch.zeros(5, device="meta")}
    with pytest.raises(CheckpointError) as info:
        load_state(_model(), partly)
    assert str(info.value) == (
        f"the checkpoint holds no data: saved from the meta device, 1 of its {count} tensors have shapes and no "
        "values (the first: 'head.bias'); save the weights of a model built on cpu or cuda"
    )
    from archspec.cli import main

    spec = tmp_path / "tiny.yaml"
    spec.write_text(json.dumps(tiny()))
    assert main(["build", str(spec), "--no-tree", "--weights", str(path)]) == 1
    assert f"error: {path}: {message} [AS501]" in capsys.readouterr().err


# --- dtypes of another kind ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "why"),
    [
        (torch.int64, "int64 in the checkpoint, float32 in the model (integer values for floating-point ones: "),
        (torch.int8, "int8 in the checkpoint, float32 in the model (integer values for floating-point ones: "),
        (torch.bool, "bool in the checkpoint, float32 in the model (bool values for floating-point ones: "),
    ],
)
def test_an_integer_or_bool_tensor_for_a_float_parameter_is_refused(dtype, why):
    state = dict(_model().state_dict())
    state["head.weight"] = torch.ones(state["head.weight"].shape, dtype=dtype)
    for load, title in (
        (load_state, "checkpoint does not fit the model"),
        (warm_start, "checkpoint tensors would lose data in the model"),
    ):
        with pytest.raises(CheckpointError) as info:
            load(_model(), state)
        assert (str(info.value), info.value.code) == (
            f"{title} (1 problems):\n  dtype: head.weight is {why}a load may change the precision, not the kind)",
            "AS502",
        )


def test_a_float_into_an_integer_buffer_and_complex_into_real_are_refused():
    state = dict(_model().state_dict())
    state["block1.0.m.complex_weight"] = torch.zeros(state["block1.0.m.complex_weight"].shape, dtype=torch.cfloat)
    state["head.bias"] = torch.zeros(5, dtype=torch.complex128)
    with pytest.raises(CheckpointError) as info:
        load_state(_model(), state)
    assert str(info.value) == (
        "checkpoint does not fit the model (2 problems):\n"
        "  dtype: block1.0.m.complex_weight is complex64 in the checkpoint, float32 in the model "
        "(complex values do not fit floating-point ones)\n"
        "  dtype: head.bias is complex128 in the checkpoint, float32 in the model "
        "(complex values do not fit floating-point ones)"
    )
    norm = torch.nn.BatchNorm2d(2)
    with pytest.raises(CheckpointError) as info:
        load_state(norm, {**norm.state_dict(), "num_batches_tracked": torch.tensor(True)})
    assert str(info.value).endswith(
        "dtype: num_batches_tracked is bool in the checkpoint, int64 in the model "
        "(bool values for integer ones: a load may change the precision, not the kind)"
    )


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_another_float_precision_still_loads(dtype):
    donor = _model(seed=5)
    state = {key: value.to(dtype) if value.is_floating_point() else value for key, value in donor.state_dict().items()}
    model = _model()
    load_state(model, state)
    assert model.state_dict()["head.weight"].dtype == torch.float32
    torch.testing.assert_close(model.state_dict()["head.weight"], state["head.weight"].float())
    norm = torch.nn.BatchNorm2d(2)
    load_state(norm, {**norm.state_dict(), "num_batches_tracked": torch.tensor(3, dtype=torch.int32)})
    assert norm.num_batches_tracked.dtype == torch.int64 and int(norm.num_batches_tracked) == 3
