"""Cisco GLBP: wire codec, authentication, configuration model, IOS layer, engine, simulator."""

from pbxgate.glbp.config import (
    AuthConfig,
    AuthMode,
    GlbpGroupConfig,
    InterfaceConfig,
    KeyChain,
    LoadBalancing,
    RouterConfig,
    TrackConfig,
    WeightingTrack,
)

__all__: list[str] = [
    "AuthConfig",
    "AuthMode",
    "GlbpGroupConfig",
    "InterfaceConfig",
    "KeyChain",
    "LoadBalancing",
    "RouterConfig",
    "TrackConfig",
    "WeightingTrack",
]
