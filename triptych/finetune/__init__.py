"""Fine-tuning: training sets, LoRA runs, the adapter registry, serving and hosted jobs."""
