"""Plain PyTorch modules. They take explicit numbers and built sub-modules, never a spec object."""

from archspec.nn.attention import Attention
from archspec.nn.backbone import Backbone, Body
from archspec.nn.class_attention import ClassAttention
from archspec.nn.drop import DropPath
from archspec.nn.embed import DownSamples, Passthrough, PatchEmbed, PoolDownsample, Stem
from archspec.nn.feature_info import FeatureInfo
from archspec.nn.features import FeatureExtractor, Stage
from archspec.nn.ffn import FFN, PVT2FFN, DWConv
from archspec.nn.flow_block import FlowBlock
from archspec.nn.heads import ClassAttentionModel, MlpHead, PoolModel, TokenModel
from archspec.nn.spectral import SpectralGatingNetwork
from archspec.nn.token_labelling import TokenLabelling

__all__ = [
    "FFN",
    "PVT2FFN",
    "Attention",
    "Backbone",
    "Body",
    "ClassAttention",
    "ClassAttentionModel",
    "DWConv",
    "DownSamples",
    "DropPath",
    "FeatureExtractor",
    "FeatureInfo",
    "FlowBlock",
    "MlpHead",
    "Passthrough",
    "PatchEmbed",
    "PoolDownsample",
    "PoolModel",
    "SpectralGatingNetwork",
    "Stage",
    "Stem",
    "TokenLabelling",
    "TokenModel",
]
