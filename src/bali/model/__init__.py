"""The BALI model: LM, graph encoders, MLM head and alignment losses."""
