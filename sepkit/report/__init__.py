"""Pictures and pages for people: spectrogram PNGs and small HTML reports (no plotting library needed)."""
