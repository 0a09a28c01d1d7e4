"""sonomap training stage: datasets, models (FCN-101, DeepLabV3, CPU profiles), training and evaluation."""
