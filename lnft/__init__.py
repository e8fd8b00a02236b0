"""lnft: a runnable companion to "LayerNorm: A key component in parameter-efficient fine-tuning"
(ValizadehAslani & Liang, arXiv 2403.20284)."""

__version__ = "0.1.0"

from .config import RunConfig  # noqa: E402
from .errors import LnftError  # noqa: E402

__all__ = ["RunConfig", "LnftError", "__version__"]
