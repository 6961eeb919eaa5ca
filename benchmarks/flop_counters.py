"""Parameters and GFLOPs of shipped specs as archspec's plan and four common counters see them.

    python benchmarks/flop_counters.py            # needs ptflops, fvcore and torchinfo

Every figure is per 224×224 image, in GFLOPs with a multiply-accumulate counted as two (ptflops,
fvcore and torchinfo report multiply-accumulates; they are doubled here). The README explains where
the counters differ.
"""

from __future__ import annotations

import argparse
import warnings

import torch
from torch.utils.flop_counter import FlopCounterMode

import archspec
from archspec.models import resolve_spec_path

DEFAULT = ["spectformer-h-s", "gfnet-ti", "deit_tiny_patch16_224", "pvt_v2_b0", "poolformer_s12", "convnext_tiny",
           "resnet50"]  # fmt: skip


def count(name: str) -> list[str]:
    import fvcore.nn
    import ptflops
    import torchinfo

    model = archspec.create_model(name).eval()
    planned = archspec.plan(archspec.load_spec(resolve_spec_path(name)))
    x = torch.randn(1, *planned.input.dims)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the counters' notes on operators they skip
        macs, params = ptflops.get_model_complexity_info(
            model, tuple(planned.input.dims), as_strings=False, print_per_layer_stat=False, verbose=False
        )
        analysis = fvcore.nn.FlopCountAnalysis(model, x)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        fvcore_macs = analysis.total()
        info = torchinfo.summary(model, input_data=x, verbose=0)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    assert params == fvcore.nn.parameter_count(model)[""] == info.total_params == planned.params, name
    gflops = [planned.flops, counter.get_total_flops(), 2 * macs, 2 * fvcore_macs, 2 * info.total_mult_adds]
    return [f"`{name}`", f"{planned.params:,}", *(f"{value / 1e9:.2f}" for value in gflops)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", default=DEFAULT, help="shipped spec names (default: one per family)")
    args = parser.parse_args()
    print("| spec | params (all four agree) | archspec plan | torch FlopCounterMode | ptflops | fvcore | torchinfo |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in args.specs:
        print("| " + " | ".join(count(name)) + " |", flush=True)


if __name__ == "__main__":
    main()
