"""Record the information plane of your own PyTorch model: a small CNN on the 8x8 digits.

    python examples/own_model.py [OUT_DIR] [EPOCHS]      (then: ibtui report OUT_DIR)
"""

import sys

import torch
from sklearn.datasets import load_digits
from torch import nn

import ibtui

out, epochs = (sys.argv[1] if len(sys.argv) > 1 else "runs/own-model"), int(sys.argv[2]) if len(sys.argv) > 2 else 100
digits = load_digits()
x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (1797, 1, 8, 8)
y = torch.tensor(digits.target)
torch.manual_seed(0)
model = nn.Sequential(
    nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 4 x 4 x 4
    nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10),
)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

with ibtui.Recorder(model, inputs=x, labels=y, out=out, epochs=epochs) as rec:
    for epoch in range(epochs):
        model.train()
        for batch in torch.randperm(len(x)).split(128):
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        rec.epoch_end(epoch, train_loss=loss.item())
print(f"recorded {out}: {', '.join(rec.layer_names)}")
