"""Built-in components. Importing this package registers each one; adding a type is one file plus one line here."""

from archspec.components import (  # noqa: F401
    downsample_conv,
    downsample_pool,
    ffn_mlp,
    ffn_pvt2,
    head_class_attention,
    head_pool,
    mixer_attention,
    mixer_spectral,
    stem_conv,
    stem_patch,
)
