"""bali: align biomedical language models with biomedical knowledge graphs (BALI, SIGIR 2025)."""

import os as _os

# Nothing downloads at run time: a user's model is a local path or an already-cached id.
for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    _os.environ.setdefault(_var, "1")
_os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

__version__ = "0.1.0"
