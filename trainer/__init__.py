"""Training of the LSTM encoder-decoder translator (PyTorch)."""
