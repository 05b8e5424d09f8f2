"""A small CNN for the 8x8 digits (the digits-cnn preset); ibtui calls make_model(input_shape, n_classes).

Input (1, 8, 8) -> conv 3x3, 8 channels -> relu -> max-pool 2 -> conv 3x3, 16 channels -> relu
-> max-pool 2 -> flatten (64) -> linear 32 -> relu -> linear 10 (logits). ibtui measures every
Conv/Linear output and every activation module, flattened per sample: conv1 (512), relu1 (512),
conv2 (256), relu2 (256), fc1 (32), relu3 (32), then the softmax output.
"""

from torch import nn


def make_model(input_shape, n_classes):
    channels, height, width = input_shape
    return nn.Sequential(
        nn.Conv2d(channels, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * (height // 4) * (width // 4), 32),
        nn.ReLU(),
        nn.Linear(32, n_classes),
    )
