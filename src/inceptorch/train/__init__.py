"""Training: configuration, optimizer and schedule, EMA, the engine loop, checkpointed run orchestration."""
