"""The options of `vae cameras`, apart from the runner so `vae --help` stays light."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pipeline.config import gateway_option, setting


@dataclass(frozen=True)
class CamerasOptions:
    """`vae cameras`: real cameras pushed to the gateway."""

    SECTION: ClassVar[str] = "cameras"

    cameras: str = setting(
        "",
        "Cameras file (YAML; the format is in README).",
        env="VAE_CAMERAS",
        required=True,
    )
    gateway: str = gateway_option()
    host: str = setting("127.0.0.1", "Address of the status and API endpoint.")
    port: int = setting(9102, "Port of the status and API endpoint (0: a free one, printed).")
    reload: float = setting(2.0, "Seconds between checks of the cameras file (0: never).")
