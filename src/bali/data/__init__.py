"""Training-data stage: tokenised shards, subgraph sampling, MLM masking and batches."""
