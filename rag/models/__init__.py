"""The models: their catalogue and offline provisioning, and the only adapters that import torch or llama_cpp."""
