"""The training engine: seeds as one model, the compiled step, the trainer and its event stream."""
