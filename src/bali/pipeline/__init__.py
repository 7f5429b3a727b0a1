"""End-to-end orchestration: `bali run CONFIG.yaml` and `bali demo`."""
